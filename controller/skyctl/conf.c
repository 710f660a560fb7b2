/* skyctl client configuration; see conf.h. */
#include "controller/skyctl/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_SHOW_MAX 64 /* bytes of a bad value quoted back in a message */

enum conf_key {
	CONF_KEY_CONTROLLER,
	CONF_KEY_CA,
	CONF_KEY_TOKEN,
	CONF_KEY__COUNT,
};

static const char *const conf_key_names[CONF_KEY__COUNT] = {
	[CONF_KEY_CONTROLLER] = "controller",
	[CONF_KEY_CA] = "ca",
	[CONF_KEY_TOKEN] = "token",
};

__attribute__((format(printf, 3, 4)))
static void conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A printable copy of untrusted text for a message: control bytes become
 * '?', text longer than dst is cut with "...".  dstlen >= 4. */
static void conf_show(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t room = dstlen - 1, n = 0;
	int cut = srclen > room;

	if (cut)
		room -= 3;
	for (size_t i = 0; i < srclen && n < room; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static int conf_lookup_key(const char *key)
{
	for (int k = 0; k < CONF_KEY__COUNT; k++)
		if (strcmp(key, conf_key_names[k]) == 0)
			return k;
	return -1;
}

static int conf_has_blank_or_control(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

static int conf_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen)
		return -ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}

static int conf_set_controller(struct skyctl_conf *conf, const char *value, char *err, size_t errlen)
{
	static const char scheme[] = "https://";
	char show[CONF_SHOW_MAX];
	size_t n = strlen(value);

	conf_show(show, sizeof(show), value, n);
	if (strncasecmp(value, scheme, sizeof(scheme) - 1) != 0) {
		conf_err(err, errlen, "controller must be an https:// URL such as https://127.0.0.1:7444, not '%s'",
			 show);
		return -EINVAL;
	}
	const char *host = value + sizeof(scheme) - 1;
	if (*host == '\0' || *host == '/' || *host == ':') {
		conf_err(err, errlen, "controller URL '%s' has no host; use e.g. https://127.0.0.1:7444", show);
		return -EINVAL;
	}
	if (conf_has_blank_or_control(value) || strpbrk(value, "?#") != NULL) {
		conf_err(err, errlen,
			 "controller URL '%s' contains blanks, control characters, '?' or '#'; "
			 "give only https://HOST:PORT", show);
		return -EINVAL;
	}
	while (n > sizeof(scheme) - 1 && value[n - 1] == '/')
		n--;
	if (n >= SKYCTL_CONF_URL_MAX) {
		conf_err(err, errlen, "controller URL is longer than %d bytes", SKYCTL_CONF_URL_MAX - 1);
		return -ENAMETOOLONG;
	}
	memcpy(conf->controller, value, n);
	conf->controller[n] = '\0';
	return 0;
}

static int conf_set_ca(struct skyctl_conf *conf, const char *value, const char *base_dir,
		       char *err, size_t errlen)
{
	char path[SKYCTL_CONF_PATH_MAX];
	int n;

	if (base_dir != NULL && value[0] != '/') {
		size_t dl = strlen(base_dir);
		const char *sep = (dl > 0 && base_dir[dl - 1] == '/') ? "" : "/";
		n = snprintf(path, sizeof(path), "%s%s%s", base_dir, sep, value);
	} else {
		n = snprintf(path, sizeof(path), "%s", value);
	}
	if (n < 0 || (size_t)n >= sizeof(path)) {
		conf_err(err, errlen, "ca path is longer than %d bytes", SKYCTL_CONF_PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	for (const char *p = path; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			conf_err(err, errlen, "ca path contains control characters");
			return -EINVAL;
		}
	}
	memcpy(conf->ca, path, (size_t)n + 1);
	return 0;
}

static int conf_set_token(struct skyctl_conf *conf, const char *value, char *err, size_t errlen)
{
	if (conf_has_blank_or_control(value)) {
		conf_err(err, errlen,
			 "token contains blanks or control characters "
			 "(comments must be on a line of their own)");
		return -EINVAL;
	}
	if (conf_copy(conf->token, sizeof(conf->token), value) < 0) {
		conf_err(err, errlen, "token is longer than %d bytes", SKYCTL_CONF_TOKEN_MAX - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

void skyctl_conf_init(struct skyctl_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
}

int skyctl_conf_set(struct skyctl_conf *conf, const char *key, const char *value,
		    const char *base_dir, char *err, size_t errlen)
{
	char show[CONF_SHOW_MAX];

	switch (conf_lookup_key(key)) {
	case CONF_KEY_CONTROLLER:
	case CONF_KEY_CA:
	case CONF_KEY_TOKEN:
		break;
	default:
		conf_show(show, sizeof(show), key, strlen(key));
		conf_err(err, errlen, "unknown key '%s'; the keys are controller, ca and token", show);
		return -EINVAL;
	}
	if (value[0] == '\0') {
		conf_err(err, errlen, "empty value for '%s'", key);
		return -EINVAL;
	}
	switch (conf_lookup_key(key)) {
	case CONF_KEY_CONTROLLER:
		return conf_set_controller(conf, value, err, errlen);
	case CONF_KEY_CA:
		return conf_set_ca(conf, value, base_dir, err, errlen);
	default:
		return conf_set_token(conf, value, err, errlen);
	}
}

static int conf_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim blanks at both ends of s in place; returns the new start. */
static char *conf_trim(char *s)
{
	size_t n;

	while (conf_is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && conf_is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

int skyctl_conf_parse(struct skyctl_conf *conf, const char *text, size_t len,
		      const char *base_dir, char *err, size_t errlen)
{
	struct skyctl_conf tmp;
	unsigned seen_on[CONF_KEY__COUNT] = { 0 };
	char line[SKYCTL_CONF_MAX_LINE + 1];
	char msg[256];
	char show[CONF_SHOW_MAX];
	unsigned lineno = 0;
	size_t pos = 0;
	int r;

	if (len > SKYCTL_CONF_MAX_FILE) {
		conf_err(err, errlen, "larger than %d bytes; is this the right file?", SKYCTL_CONF_MAX_FILE);
		return -EFBIG;
	}
	skyctl_conf_init(&tmp);
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;

		pos += n + (nl != NULL ? 1 : 0);
		lineno++;
		if (n > SKYCTL_CONF_MAX_LINE) {
			conf_err(err, errlen, "line %u: longer than %d bytes", lineno, SKYCTL_CONF_MAX_LINE);
			return -EINVAL;
		}
		if (memchr(start, '\0', n) != NULL) {
			conf_err(err, errlen, "line %u: contains a NUL byte; is this a text file?", lineno);
			return -EINVAL;
		}
		memcpy(line, start, n);
		line[n] = '\0';

		char *s = conf_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			conf_show(show, sizeof(show), s, strlen(s));
			conf_err(err, errlen, "line %u: expected 'key = value', found '%s'", lineno, show);
			return -EINVAL;
		}
		*eq = '\0';
		char *key = conf_trim(s);
		char *value = conf_trim(eq + 1);
		int k = conf_lookup_key(key);
		if (k >= 0 && seen_on[k] != 0) {
			conf_err(err, errlen, "line %u: '%s' is already set on line %u", lineno, key,
				 seen_on[k]);
			return -EINVAL;
		}
		r = skyctl_conf_set(&tmp, key, value, base_dir, msg, sizeof(msg));
		if (r < 0) {
			conf_err(err, errlen, "line %u: %s", lineno, msg);
			return r;
		}
		seen_on[k] = lineno;
	}
	*conf = tmp;
	return 0;
}

/* The folder part of path into dir: "a/b/c" -> "a/b", "/c" -> "/", and
 * "c" -> "." */
static int conf_dirname(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return conf_copy(dir, dirlen, ".");
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= dirlen)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

int skyctl_conf_load(struct skyctl_conf *conf, const char *path, char *err, size_t errlen)
{
	char dir[SKYCTL_CONF_PATH_MAX];
	char msg[384];
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, r;

	r = conf_dirname(path, dir, sizeof(dir));
	if (r < 0) {
		conf_err(err, errlen, "config path is longer than %d bytes", SKYCTL_CONF_PATH_MAX - 1);
		return r;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		conf_err(err, errlen, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		conf_err(err, errlen, "cannot stat %s: %s", path, strerror(-r));
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		conf_err(err, errlen, "%s is not a regular file", path);
		goto fail_fd;
	}
	buf = malloc(SKYCTL_CONF_MAX_FILE + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		conf_err(err, errlen, "out of memory reading %s", path);
		goto fail_fd;
	}
	for (;;) {
		ssize_t got = read(fd, buf + len, SKYCTL_CONF_MAX_FILE + 1 - len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			conf_err(err, errlen, "cannot read %s: %s", path, strerror(-r));
			goto fail_buf;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len > SKYCTL_CONF_MAX_FILE) {
			r = -EFBIG;
			conf_err(err, errlen, "%s is larger than %d bytes; is this the right file?", path,
				 SKYCTL_CONF_MAX_FILE);
			goto fail_buf;
		}
	}
	r = skyctl_conf_parse(conf, buf, len, dir, msg, sizeof(msg));
	if (r < 0)
		conf_err(err, errlen, "%s: %s", path, msg);

fail_buf:
	free(buf);
fail_fd:
	close(fd);
	return r;
}

int skyctl_conf_default_path(const char *env_config, const char *home, char *buf, size_t len)
{
	static const char suffix[] = "/.config/skyroot/skyctl.conf";
	size_t need;

	if (env_config != NULL && env_config[0] != '\0') {
		need = strlen(env_config) + 1;
		if (need > len)
			return -ENAMETOOLONG;
		memcpy(buf, env_config, need);
		return 0;
	}
	if (home == NULL || home[0] == '\0')
		return -ENOENT;
	need = strlen(home) + sizeof(suffix);
	if (need > len)
		return -ENAMETOOLONG;
	snprintf(buf, len, "%s%s", home, suffix);
	return 0;
}
