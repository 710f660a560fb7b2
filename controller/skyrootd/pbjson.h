/* JSON <-> protobuf through a message's descriptor (proto/api.proto): the
 * one transcoder of the REST API's two encodings.  It walks a
 * ProtobufCMessageDescriptor (field names, types, repeated, nested
 * messages, maps, enums by name, bytes as base64) and the well-known types
 * api.proto uses (Timestamp as RFC 3339, the wrappers as a bare value or
 * null, Value/Struct/ListValue as any JSON); protobuf-c packs and unpacks.
 *
 * JSON is proto3's mapping with the proto field names (snake_case); it is
 * strict: a field the message lacks or a value of the wrong type is an
 * error naming the field ("boards[0].dmi.vendor: ...").  null is the
 * same as leaving a field out.  64-bit integers are read from a number or
 * a decimal string and written as numbers (a uint64 over INT64_MAX as a
 * string); fields at their default (0, "", false, empty) are left out of
 * the JSON written. */
#ifndef SKY_CONTROLLER_PBJSON_H
#define SKY_CONTROLLER_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PBJSON_ERR_MAX 256
/* Nesting of JSON objects and arrays (Value in Value ...) taken. */
#define PBJSON_DEPTH_MAX 32

/* j as a message of type d: 0 and *out (free with
 * protobuf_c_message_free_unpacked(*out, NULL)), -EINVAL with err naming
 * the field, or -ENOMEM. */
int pbjson_decode(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out, char *err, size_t errlen);
/* m as JSON: a new reference, or NULL when out of memory. */
json_t *pbjson_encode(const ProtobufCMessage *m);
/* Whether j fits d: 0 or -EINVAL with err (the drift guard of answers). */
int pbjson_check(const ProtobufCMessageDescriptor *d, json_t *j, char *err, size_t errlen);
/* j packed as a d: 0 and *out (malloc'd), *len; -EINVAL (err) or -ENOMEM. */
int pbjson_pack(const ProtobufCMessageDescriptor *d, json_t *j, uint8_t **out, size_t *len, char *err,
		size_t errlen);
/* Whether d is one of the wrappers (google.protobuf.StringValue, ...):
 * in JSON its bare value, or null. */
bool pbjson_is_wrapper(const ProtobufCMessageDescriptor *d);
/* Whether f is a map<K, V>: repeated entries of a message XxxEntry
 * {key = 1; value = 2}; in JSON an object. */
bool pbjson_is_map(const ProtobufCFieldDescriptor *f);
/* len bytes of a packed d as JSON: a new reference, or NULL with err
 * (not a valid message, too deep, or out of memory). */
json_t *pbjson_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len, char *err,
		      size_t errlen);

#endif
