/* -o yaml: a JSON value (the controller's answer) written as YAML with
 * libyaml's emitter, so that a YAML reader gets back exactly the JSON:
 * every string (keys too) is double-quoted, so none reads back as a
 * number, a boolean or null; integers, reals, true, false and null are
 * plain.  Library code: it prints nothing else. */
#ifndef SKY_SKYCTL_YAMLOUT_H
#define SKY_SKYCTL_YAMLOUT_H

#include <jansson.h>
#include <stdio.h>

/* v as one YAML document on f: 0, -ENOMEM, or -EIO when f cannot be
 * written. */
int skyctl_yaml_write(FILE *f, json_t *v);

#endif
