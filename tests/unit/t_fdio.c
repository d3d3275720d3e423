/* t_fdio.c - a file replaced whole or not at all (fd_replace_*). */
#include "fdio.h"
#include "tap.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The names in dir but . and .., space-separated into out; returns how many. */
static int names(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;

	out[0] = '\0';
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		count++;
		snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? " " : "", e->d_name);
	}
	closedir(d);
	return count;
}

static char *slurp(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return NULL;
	r = read(fd, out, n - 1);
	close(fd);
	if (r < 0)
		return NULL;
	out[r] = '\0';
	return out;
}

int main(void)
{
	char dir[] = "/tmp/t_fdio.XXXXXX", path[256], buf[256], ls[512];
	struct fd_replace r;
	struct ai_err err;
	struct stat st;

	ai_err_clear(&err);
	umask(022);
	ok(mkdtemp(dir) != NULL, "a directory");
	snprintf(path, sizeof(path), "%s/report", dir);

	ok(fd_replace_file(path, "old\n", 4, 0666, &err) == 0, "a new file: %s", err.msg);
	memset(&st, 0, sizeof(st));
	stat(path, &st);
	is_int(st.st_mode & 0777, 0644, "0666 less the umask");

	ok(fd_replace_open(&r, path, 0600, &err) == 0, "opened aside: %s", err.msg);
	ok(fd_write_all(r.fd, "new\n", 4) == 0, "written in a piece");
	is_int(names(dir, ls, sizeof(ls)), 2, "the file and one beside it: %s", ls);
	ok(strstr(ls, ".report.") != NULL, "the one beside it hidden: %s", ls);
	is_str(slurp(path, buf, sizeof(buf)), "old\n", "the reader still sees the old file whole");
	ok(fd_replace_commit(&r, &err) == 0, "committed: %s", err.msg);
	is_str(slurp(path, buf, sizeof(buf)), "new\n", "and now the new one");
	memset(&st, 0, sizeof(st));
	stat(path, &st);
	is_int(st.st_mode & 0777, 0600, "its mode, as asked");
	is_int(names(dir, ls, sizeof(ls)), 1, "nothing left beside it: %s", ls);

	ok(fd_replace_open(&r, path, 0600, &err) == 0, "opened aside again");
	ok(fd_write_all(r.fd, "half", 4) == 0, "half written");
	fd_replace_abort(&r);
	is_str(slurp(path, buf, sizeof(buf)), "new\n", "abandoned: the file as it was");
	is_int(names(dir, ls, sizeof(ls)), 1, "and nothing left beside it: %s", ls);

	snprintf(path, sizeof(path), "%s/sub", dir);
	ok(mkdir(path, 0700) == 0, "a directory where the file would go");
	ok(fd_replace_open(&r, path, 0600, &err) == 0, "opened aside of it");
	ok(fd_replace_commit(&r, &err) == -1 && err.code == AI_EX_IOERR && strstr(err.msg, "cannot write '"),
	   "the rename fails: %s", err.msg);
	is_int(names(dir, ls, sizeof(ls)), 2, "and leaves nothing aside: %s", ls);
	ok(rmdir(path) == 0, "the directory as it was");

	snprintf(path, sizeof(path), "%s/no/such/dir", dir);
	ai_err_clear(&err);
	ok(fd_replace_file(path, "x", 1, 0666, &err) == -1 && err.code == AI_EX_IOERR &&
	   strstr(err.msg, "cannot create '") && strstr(err.msg, "/no/such/dir'"),
	   "no directory: IOERR naming the file: %s", err.msg);

	snprintf(path, sizeof(path), "%s/report", dir);
	ok(unlink(path) == 0 && rmdir(dir) == 0, "cleaned up");
	return tap_done();
}
