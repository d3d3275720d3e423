/*
 * replay.c - runs a libFuzzer harness without libFuzzer, for make check.
 *
 *	fuzz_NAME FILE...
 *
 * Linked with one tests/fuzz/fuzz_NAME.c, it calls LLVMFuzzerTestOneInput
 * once per file (json-c's practice: every seed and every crash the fuzzer
 * found stays a test), each in a child process so that one crash is one
 * "not ok" line and the files after it still run.  The input is a heap
 * block of exactly the file's size, so the sanitizer build sees a read
 * one byte past it.  Prints TAP lines for tests/run to count; exits 1
 * when any file failed.
 */
#include "ai.h"
#include "fdio.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole of path into an owned block of exactly its size (free with free()). */
static int slurp(const char *path, uint8_t **data, size_t *size)
{
	struct buf b;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	*data = NULL;
	*size = 0;
	if (fd < 0)
		return -1;
	buf_init(&b, 0);
	rc = fd_read_all(fd, &b, NULL);
	close(fd);
	if (rc == 0) {
		/* A block of exactly the input's size, with no NUL after it. */
		*data = malloc(b.len ? b.len : 1);
		if (!*data)
			rc = -1;
		else {
			memcpy(*data, b.data, b.len);
			*size = b.len;
		}
	}
	buf_release(&b);
	return rc;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		uint8_t *data;
		size_t size;
		pid_t pid;
		int st = 0;

		if (slurp(argv[i], &data, &size)) {
			printf("not ok - %s %s: cannot read it: %s\n", name, argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			LLVMFuzzerTestOneInput(data, size);
			free(data);
			exit(0);
		}
		free(data);
		if (pid < 0 || waitpid(pid, &st, 0) != pid) {
			printf("not ok - %s %s: cannot run it: %s\n", name, argv[i], strerror(errno));
			failed = 1;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			printf("ok - %s %s\n", name, argv[i]);
		} else {
			if (WIFSIGNALED(st))
				printf("not ok - %s %s: killed by signal %d\n", name, argv[i],
				       WTERMSIG(st));
			else
				printf("not ok - %s %s: exited %d\n", name, argv[i], WEXITSTATUS(st));
			failed = 1;
		}
	}
	if (fflush(stdout) || ferror(stdout))
		return 1;
	return failed;
}
