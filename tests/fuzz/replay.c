/* Replays a fuzz target's corpus without libFuzzer: linked with one
 * tests/fuzz/fuzz_NAME.c in the normal builds (gcc, ASan + UBSan) so that
 * every committed input, seeds and kept crashes alike, runs as a unit test
 * (fuzz_replay_NAME, defined for every entry of fuzz_targets in
 * tests/fuzz/meson.build).
 *
 * usage: fuzz_replay_NAME DIR|FILE...
 * Calls LLVMFuzzerInitialize once (when the target defines it), then
 * LLVMFuzzerTestOneInput on every regular file of each DIR (sorted by name,
 * so a failure names the same file each time) and on each FILE.  A target
 * reports a bug by crashing or aborting, as under libFuzzer; the input that
 * was running is printed first.  A missing directory is an error, an empty
 * one too: a corpus that lost its files must not pass by replaying nothing. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The inputs libFuzzer accepts are bounded by -max_len in run.sh; a file far
 * beyond that is not a corpus entry. */
#define REPLAY_MAX_INPUT (16u * 1024u * 1024u)

/* Where the replay reports: the stderr it started with (a target's
 * LLVMFuzzerInitialize may point stderr elsewhere to keep quiet). */
static FILE *out;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;
	size_t got;

	if (!f) {
		fprintf(out, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (unsigned long)len > REPLAY_MAX_INPUT) {
		fprintf(out, "replay: %s: cannot size it, or larger than %u bytes\n", path,
			REPLAY_MAX_INPUT);
		fclose(f);
		return -1;
	}
	/* An exact-size copy (at least one byte, but size stays 0 for an empty
	 * file) so that ASan sees any read past the end of the input. */
	buf = malloc(len ? (size_t)len : 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, (size_t)len, f);
	fclose(f);
	if (got != (size_t)len) {
		fprintf(out, "replay: %s: short read\n", path);
		free(buf);
		return -1;
	}
	fprintf(out, "replay: %s (%zu bytes)\n", path, got);
	fflush(out);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of files replayed, or -1. */
static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int count = 0, rc = 0;

	if (!d) {
		fprintf(out, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue; /* ".", "..", and editors' hidden files */
		if (n == cap) {
			char **more = realloc(names, (cap ? cap * 2 : 64) * sizeof *names);
			if (!more) {
				rc = -1;
				break;
			}
			names = more;
			cap = cap ? cap * 2 : 64;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		if (rc == 0) {
			if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
				fprintf(out, "replay: %s/%s: path too long\n", dir, names[i]);
				rc = -1;
			} else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (replay_file(path) != 0)
					rc = -1;
				else
					count++;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc ? -1 : count;
}

int main(int argc, char **argv)
{
	int total = 0;

	out = stderr;
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;
		if (stat(argv[i], &st) != 0) {
			fprintf(out, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			n = replay_dir(argv[i]);
			if (n == 0) {
				fprintf(out, "replay: %s holds no input\n", argv[i]);
				return 1;
			}
		} else {
			n = replay_file(argv[i]) == 0 ? 1 : -1;
		}
		if (n < 0)
			return 1;
		total += n;
	}
	fprintf(out, "replay: %d inputs, no crash\n", total);
	return 0;
}
