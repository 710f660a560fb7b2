/* Small helpers shared by every program: time, randomness, hashing, files
 * written durably, UTF-8 sequences (hex and addresses are in
 * common/parse.h).  All return 0 or a negative errno. */
#ifndef SKY_COMMON_UTIL_H
#define SKY_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SKY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

uint64_t sky_now_ms(void);       /* CLOCK_MONOTONIC */
int64_t sky_unix_now(void);      /* CLOCK_REALTIME seconds */
uint64_t sky_unix_now_ms(void);

int sky_random(void *buf, size_t len);
/* Uniform random in [0, n) (n > 0). */
uint64_t sky_random_below(uint64_t n);

void sky_sha256(const void *data, size_t len, uint8_t out[32]);
/* SHA-256 of pieces one after the other (a piece of n 0 adds nothing):
 * 0, or -EIO when OpenSSL fails. */
struct sky_piece {
	const void *p;
	size_t n;
};
int sky_sha256_pieces(const struct sky_piece *pieces, size_t n, uint8_t out[32]);
/* Constant-time compare of len bytes: 1 equal, 0 not. */
int sky_memeq_ct(const void *a, const void *b, size_t len);

/* Length of the well-formed UTF-8 sequence at s (n > 0 bytes available):
 * 1 for ASCII, 2 to 4 for a sequence RFC 3629 allows (no overlong forms,
 * no surrogates, nothing past U+10FFFF), 0 when the bytes there are not
 * one. */
size_t sky_utf8_seq(const unsigned char *s, size_t n);

/* RFC 3339 UTC ("2026-11-25T12:00:00Z") into out (>= 21 bytes). */
void sky_fmt_time(int64_t unix_s, char *out, size_t outlen);

/* Write a whole file atomically and durably (tmp + fsync + rename + fsync dir)
 * with the given mode.  Refuses to replace an existing file when excl. */
int sky_write_file(const char *path, const void *data, size_t len, mode_t mode, int excl);
/* fsync the folder that holds path (after a rename into it). */
int sky_fsync_dir_of(const char *path);
/* Read a whole file of at most max bytes (NUL-terminated, *len excludes it);
 * -EFBIG for a longer one. */
int sky_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
