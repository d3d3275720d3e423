/* t_path.c - canonical paths for the knowledge base, and their display. */
#include "path.h"
#include "buf.h"
#include "tap.h"

#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	char tmpl[] = "/tmp/t_path.XXXXXX", *dir = mkdtemp(tmpl), *p, *want;
	struct buf b;
	FILE *f;

	if (!dir || chdir(dir) || mkdir("notes", 0700) || !(f = fopen("notes/keys.md", "w")) || fclose(f))
		return 1;
	dir = realpath(".", NULL);
	buf_init(&b, 0);
	buf_addf(&b, "%s/notes/keys.md", dir);
	want = b.data;

	is_str(p = path_canonical("notes/keys.md"), want, "a relative path"); free(p);
	is_str(p = path_canonical("./notes//keys.md"), want, "./ and // go"); free(p);
	is_str(p = path_canonical(want), want, "an absolute path is itself"); free(p);
	if (symlink("notes", "link") == 0) {
		is_str(p = path_canonical("link/keys.md"), want, "a symlink resolves to the file"); free(p);
	}
	if (symlink("notes", "ln") == 0) {
		p = path_canonical("ln/removed.md");
		ok(p && !strncmp(p, dir, strlen(dir)) && !strcmp(p + strlen(dir), "/notes/removed.md"),
		   "a missing file below a link is named through the link's target: %s", p ? p : "(null)");
		free(p);
		p = path_canonical("ln/no/such/../dir.md");
		ok(p && !strncmp(p, dir, strlen(dir)) && !strcmp(p + strlen(dir), "/notes/no/dir.md"),
		   "missing directories below it by name: %s", p ? p : "(null)");
		free(p);
		unlink("ln");
	}
	if (!chdir("notes")) {
		is_str(p = path_canonical("keys.md"), want, "from inside its directory"); free(p);
		p = path_canonical("../notes/./gone.md");
		ok(p && !strncmp(p, dir, strlen(dir)) && !strcmp(p + strlen(dir), "/notes/gone.md"),
		   "a missing file from inside: %s", p ? p : "(null)");
		free(p);
		if (chdir(".."))
			return 1;
	}
	{
		struct buf g;

		buf_init(&g, 0);
		buf_addf(&g, "%s/notes/gone.md", dir);
		is_str(p = path_canonical("notes/x/../gone.md"), g.data, "a missing file is resolved by name"); free(p);
		is_str(p = path_canonical("/a/b/../../c"), "/c", ".. up to the root"); free(p);
		is_str(p = path_canonical("/../.."), "/", "no higher than the root"); free(p);
		buf_release(&g);
	}
	is_str(path_display(want), "notes/keys.md", "shown relative inside the current directory");
	is_str(path_display("/etc/hosts"), "/etc/hosts", "outside it, absolute");
	is_str(path_display(dir), dir, "the directory itself stays absolute");
	unlink("link");
	unlink("notes/keys.md");
	rmdir("notes");
	if (!chdir("/"))
		rmdir(dir);
	buf_release(&b);
	free(dir);
	return tap_done();
}
