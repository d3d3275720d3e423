#include "batch/jobs.h"
#include "config.h"
#include "fdio.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *jobs_root(struct ai_err *err)
{
	char *d = config_xdg_path("DATA", "jobs");

	if (!d)
		ai_errf(err, AI_EX_CONFIG, "no data directory for jobs (set HOME or XDG_DATA_HOME)");
	return d;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 8 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
		      (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' || id[i] == '_'))
			return false;
	return true;
}

static int set_dir(struct job *j, const char *root, struct ai_err *err)
{
	struct buf b;

	buf_init(&b, 0);
	if (buf_addf(&b, "%s/%s", root, j->id))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	j->dir = buf_detach(&b, NULL);
	return 0;
}

static int remove_dir(const char *dir);

/*
 * Removes what deletes cut short left (.deleting-ID), as far as it can: a
 * delete still under way loses nothing by it, its job is out of sight
 * already and remove_dir takes a file gone as removed.
 */
static void sweep(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;
	struct buf p;

	if (!d)
		return;
	buf_init(&p, 0);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, ".deleting-", 10) || !valid_id(de->d_name + 10))
			continue;
		buf_reset(&p);
		if (!buf_addf(&p, "%s/%s", root, de->d_name))
			remove_dir(p.data);
	}
	buf_release(&p);
	closedir(d);
}

int job_new(struct job *j, struct ai_err *err)
{
	char *root = jobs_root(err);
	time_t t = time(NULL);
	struct tm tm;
	unsigned char r[3];
	int rc = -1;

	memset(j, 0, sizeof(*j));
	if (!root)
		return -1;
	if (config_mkdirs(root, 0700, err))
		goto out;
	sweep(root);
	for (int tries = 0; tries < 20; tries++) {
		size_t n;

		gmtime_r(&t, &tm);
		n = strftime(j->id, sizeof(j->id), "%Y%m%dT%H%M%S", &tm);
		randombytes_buf(r, sizeof(r));
		snprintf(j->id + n, sizeof(j->id) - n, "-%02x%02x%02x", r[0], r[1], r[2]);
		free(j->dir);
		j->dir = NULL;
		if (set_dir(j, root, err))
			goto out;
		if (!mkdir(j->dir, 0700)) {
			rc = 0;
			goto out;
		}
		if (errno != EEXIST) {
			ai_errf(err, AI_EX_IOERR, "cannot create '%s': %s", j->dir, strerror(errno));
			goto out;
		}
	}
	ai_errf(err, AI_EX_SOFTWARE, "cannot find a free job id in '%s'", root);
out:
	free(root);
	if (rc)
		job_release(j);
	return rc;
}

int job_open(struct job *j, const char *id, struct ai_err *err)
{
	char *root;
	struct stat st;

	memset(j, 0, sizeof(*j));
	if (!valid_id(id))
		return ai_errf(err, AI_EX_USAGE, "'%.80s' is not a job id (see ai-batch list)", id);
	snprintf(j->id, sizeof(j->id), "%s", id);
	if (!(root = jobs_root(err)))
		return -1;
	if (set_dir(j, root, err)) {
		free(root);
		return -1;
	}
	free(root);
	if (stat(j->dir, &st) || !S_ISDIR(st.st_mode)) {
		ai_errf(err, AI_EX_NOINPUT, "no job '%s' (see ai-batch list)", id);
		job_release(j);
		return -1;
	}
	return 0;
}

void job_release(struct job *j)
{
	free(j->dir);
	memset(j, 0, sizeof(*j));
}

int job_path(const struct job *j, const char *name, struct buf *out)
{
	return buf_addf(out, "%s/%s", j->dir, name);
}

static int write_file(const char *path, const char *data, size_t n, struct ai_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot create '%s': %s", path, strerror(errno));
	if (fd_write_all(fd, data, n)) {
		ai_errf(err, AI_EX_IOERR, "cannot write '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (fsync(fd) | close(fd))
		return ai_errf(err, AI_EX_IOERR, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

static int read_file(const char *path, struct buf *out, struct ai_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", path, strerror(errno));
	if (fd_read_all(fd, out, NULL)) {
		ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", path,
			errno == EFBIG ? "too large" : strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int job_save_args(const struct job *j, int argc, char **argv, struct ai_err *err)
{
	struct buf b, p;
	int rc;

	buf_init(&b, 1u << 20);
	buf_init(&p, 0);
	for (int i = 0; i < argc; i++)
		if (buf_add(&b, argv[i], strlen(argv[i]) + 1)) {
			buf_release(&b);
			return ai_errf(err, AI_EX_USAGE, "the options are too long to save");
		}
	rc = job_path(j, "args", &p) ? ai_errf(err, AI_EX_OSERR, "out of memory") :
	     write_file(p.data, b.data ? b.data : "", b.len, err);
	buf_release(&b);
	buf_release(&p);
	return rc;
}

int job_load_args(const struct job *j, int *argc, char ***argv, struct ai_err *err)
{
	struct buf b, p;
	size_t n = 1, k = 0;
	char **v;

	buf_init(&b, 1u << 20);
	buf_init(&p, 0);
	if (job_path(j, "args", &p) || read_file(p.data, &b, err)) {
		buf_release(&p);
		buf_release(&b);
		return err->code ? -1 : ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	buf_release(&p);
	for (size_t i = 0; i < b.len; i++)
		n += !b.data[i];
	if (!(v = calloc(n + 1, sizeof(*v))) || !(v[k++] = strdup("ai-batch"))) {
		free(v);
		buf_release(&b);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	for (size_t i = 0; i < b.len; i += strlen(b.data + i) + 1)
		if (!(v[k++] = strdup(b.data + i))) {
			job_free_args((int)k - 1, v);
			buf_release(&b);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	buf_release(&b);
	*argc = (int)k;
	*argv = v;
	return 0;
}

void job_free_args(int argc, char **argv)
{
	for (int i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
}

int job_write_status(const struct job *j, json_object *status, struct ai_err *err)
{
	struct buf path;
	size_t n;
	const char *s = json_object_to_json_string_length(status, JSON_C_TO_STRING_PLAIN, &n);
	int rc;

	buf_init(&path, 0);
	rc = job_path(j, "status.json", &path) ? ai_errf(err, AI_EX_OSERR, "out of memory") :
	     fd_replace_file(path.data, s, n, 0600, err);
	buf_release(&path);
	return rc;
}

json_object *job_read_status(const struct job *j, struct ai_err *err)
{
	struct buf b, p;
	json_object *o = NULL;

	buf_init(&b, 1u << 20);
	buf_init(&p, 0);
	if (!job_path(j, "status.json", &p) && !read_file(p.data, &b, err)) {
		o = b.data ? json_tokener_parse(b.data) : NULL;
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
			ai_errf(err, AI_EX_DATAERR, "'%s' is damaged", p.data);
		}
	}
	buf_release(&b);
	buf_release(&p);
	return o;
}

int job_lock(const struct job *j, int *fd, struct ai_err *err)
{
	struct buf p;
	int f;

	buf_init(&p, 0);
	if (job_path(j, "lock", &p))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	f = open(p.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0) {
		ai_errf(err, AI_EX_IOERR, "cannot open '%s': %s", p.data, strerror(errno));
		buf_release(&p);
		return -1;
	}
	buf_release(&p);
	if (flock(f, LOCK_EX | LOCK_NB)) {
		close(f);
		if (errno == EWOULDBLOCK)
			return 1;
		return ai_errf(err, AI_EX_IOERR, "cannot lock job '%s': %s", j->id, strerror(errno));
	}
	*fd = f;
	return 0;
}

int job_lock_wait(const struct job *j, int *fd, long wait_ms, struct ai_err *err)
{
	struct timespec ts = { 0, 20 * 1000000L };
	int r;

	/* Short holders (a look with job_running, a delete deciding) are waited out. */
	for (long waited = 0;; waited += 20) {
		r = job_lock(j, fd, err);
		if (r != 1 || waited >= wait_ms)
			return r;
		nanosleep(&ts, NULL);
	}
}

int job_lock_claim(int fd, struct ai_err *err)
{
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
		return ai_errf_errno(err, AI_EX_IOERR, "cannot write the runner's pid into the job's lock");
	return 0;
}

bool job_lock_current(const struct job *j, int fd)
{
	struct stat held, named;
	struct buf p;
	bool same;

	buf_init(&p, 0);
	same = !job_path(j, "lock", &p) && !fstat(fd, &held) && !stat(p.data, &named) &&
	       held.st_nlink > 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino;
	buf_release(&p);
	return same;
}

long job_runner_pid(const struct job *j)
{
	struct buf p;
	char text[24];
	ssize_t n;
	long pid = 0;
	int fd;

	buf_init(&p, 0);
	if (job_path(j, "lock", &p)) {
		buf_release(&p);
		return 0;
	}
	fd = open(p.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf_release(&p);
	if (fd < 0)
		return -1;
	/* A shared lock is enough to learn that no runner holds the exclusive one. */
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		close(fd);
		return -1;
	}
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	if (n > 0) {
		char *end;

		text[n] = '\0';
		errno = 0;
		pid = strtol(text, &end, 10);
		if (errno || end == text || *end != '\n' || pid <= 1)
			pid = 0;
	}
	return pid;
}

int job_running(const struct job *j)
{
	struct ai_err e;
	int fd, r;

	ai_err_clear(&e);
	r = job_lock(j, &fd, &e);
	if (r == 0)
		close(fd);
	return r == 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int job_list(char ***ids, size_t *n, struct ai_err *err)
{
	char *root = jobs_root(err), **v = NULL;
	size_t k = 0, cap = 0;
	DIR *d;
	struct dirent *de;

	*ids = NULL;
	*n = 0;
	if (!root)
		return -1;
	if (!(d = opendir(root))) {
		free(root);
		if (errno == ENOENT)
			return 0;
		return ai_errf(err, AI_EX_IOERR, "cannot read the job directory: %s", strerror(errno));
	}
	free(root);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !valid_id(de->d_name))
			continue;
		if (k == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[k] = strdup(de->d_name)))
			goto oom;
		k++;
	}
	closedir(d);
	if (k)
		qsort(v, k, sizeof(*v), cmp_str);
	*ids = v;
	*n = k;
	return 0;
oom:
	closedir(d);
	job_free_list(v, k);
	return ai_errf(err, AI_EX_OSERR, "out of memory");
}

void job_free_list(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Removes every file in dir, then dir: a job holds files only.  0, or -1 with errno. */
static int remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct buf p;
	int rc = 0, e = 0;

	/* Gone already: another delete, or a sweep, removed it first. */
	if (!d)
		return errno == ENOENT ? 0 : -1;
	buf_init(&p, 0);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		buf_reset(&p);
		if (buf_addf(&p, "%s/%s", dir, de->d_name)) {
			e = ENOMEM;
			rc = -1;
			break;
		}
		if (unlink(p.data) && errno != ENOENT) {
			e = errno;
			rc = -1;
		}
	}
	closedir(d);
	buf_release(&p);
	if (!rc && rmdir(dir) && errno != ENOENT) {
		e = errno;
		rc = -1;
	}
	errno = e;
	return rc;
}

int job_remove(const struct job *j)
{
	return remove_dir(j->dir);
}

int job_delete(struct job *j, struct ai_err *err)
{
	char *root = jobs_root(err);
	struct buf hidden;
	int rc;

	if (!root)
		return -1;
	buf_init(&hidden, 0);
	rc = buf_addf(&hidden, "%s/.deleting-%s", root, j->id);
	free(root);
	if (rc) {
		buf_release(&hidden);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	/* What an earlier delete cut short left: else the rename below would fail. */
	if (remove_dir(hidden.data)) {
		ai_errf(err, AI_EX_IOERR, "cannot delete job '%s': '%s', left by an earlier delete, "
			"cannot be removed: %s", j->id, hidden.data, strerror(errno));
		buf_release(&hidden);
		return -1;
	}
	/*
	 * Out of sight in one step: list skips a name with a dot, job_open
	 * refuses it, and a runner not yet started finds no job.
	 */
	if (rename(j->dir, hidden.data)) {
		ai_errf(err, AI_EX_IOERR, "cannot delete job '%s': %s", j->id, strerror(errno));
		buf_release(&hidden);
		return -1;
	}
	free(j->dir);
	j->dir = buf_detach(&hidden, NULL);
	if (remove_dir(j->dir))
		return ai_errf(err, AI_EX_IOERR, "job '%s' is deleted, but '%s' is left: %s", j->id, j->dir,
			       strerror(errno));
	return 0;
}

int job_detach(const struct job *j, struct ai_err *err)
{
	struct buf log;
	pid_t pid;
	int st, fd;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return ai_errf(err, AI_EX_OSERR, "cannot start the job: fork: %s", strerror(errno));
	if (pid > 0) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return ai_errf(err, AI_EX_OSERR, "cannot start the job in the background");
		return 1;
	}
	/* The middle process: a new session, then the runner is its child and it goes. */
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	buf_init(&log, 0);
	if (job_path(j, "log", &log))
		_exit(1);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(1);
	if (fd > 2)
		close(fd);
	fd = open(log.data, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(1);
	if (fd > 2)
		close(fd);
	buf_release(&log);
	if (chdir("/"))
		_exit(1);
	return 0;
}
