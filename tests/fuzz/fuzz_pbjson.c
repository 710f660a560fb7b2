/* libFuzzer target: the JSON <-> protobuf transcoder
 * (controller/skyrootd/pbjson.c) over the messages of proto/api.proto.
 * The first byte picks the message and the input's encoding: JSON (what a
 * handler answers, or a client sends) or protobuf (a request body).
 *
 * Whatever it is given it must not crash, and what it takes must round
 * trip: JSON it decodes encodes to JSON that decodes and packs, and
 * unpacks to the same JSON; protobuf it unpacks packs again and unpacks to
 * the same JSON. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "controller/skyrootd/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const fz_msgs[] = {
	&skyroot__api__v1__board_list__descriptor,     &skyroot__api__v1__board__descriptor,
	&skyroot__api__v1__image_list__descriptor,     &skyroot__api__v1__guest_list__descriptor,
	&skyroot__api__v1__token_list__descriptor,     &skyroot__api__v1__credential_list__descriptor,
	&skyroot__api__v1__audit_list__descriptor,     &skyroot__api__v1__error__descriptor,
	&skyroot__api__v1__image_verify__descriptor,   &skyroot__api__v1__boot_answer__descriptor,
	&skyroot__api__v1__meta_patch__descriptor,     &skyroot__api__v1__guest_request__descriptor,
	&skyroot__api__v1__token_request__descriptor,  &skyroot__api__v1__credential_request__descriptor,
	&skyroot__api__v1__rotate_request__descriptor, &skyroot__api__v1__boot_request__descriptor,
	&skyroot__api__v1__event_list__descriptor,     &skyroot__api__v1__event__descriptor,
	&skyroot__api__v1__pending_list__descriptor,   &skyroot__api__v1__expectation_request__descriptor,
	&skyroot__api__v1__expectation_list__descriptor,
};

/* j packs, and unpacks to j again. */
static void fz_round_trip(const ProtobufCMessageDescriptor *d, json_t *j)
{
	char err[PBJSON_ERR_MAX];
	uint8_t *buf;
	size_t len;
	json_t *back;

	if (pbjson_pack(d, j, &buf, &len, err, sizeof(err)) != 0)
		abort();
	back = pbjson_unpack(d, buf, len, err, sizeof(err));
	if (!back || !json_equal(back, j))
		abort();
	json_decref(back);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	char err[PBJSON_ERR_MAX];
	ProtobufCMessage *m;
	json_t *j, *out;
	int r;

	if (size < 1)
		return 0;
	d = fz_msgs[(data[0] >> 1) % (sizeof(fz_msgs) / sizeof(fz_msgs[0]))];
	if (data[0] & 1) {
		/* protobuf in */
		j = pbjson_unpack(d, data + 1, size - 1, err, sizeof(err));
		if (!j) {
			if (!err[0] || !memchr(err, '\0', sizeof(err)))
				abort();
			return 0;
		}
		fz_round_trip(d, j);
		json_decref(j);
		return 0;
	}
	/* JSON in */
	j = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	err[0] = '\0';
	r = pbjson_decode(d, j, &m, err, sizeof(err));
	json_decref(j);
	if (r != 0) {
		if (r != -EINVAL || !err[0])
			abort();
		return 0;
	}
	out = pbjson_encode(m);
	protobuf_c_message_free_unpacked(m, NULL);
	if (!out)
		abort();
	if (pbjson_check(d, out, err, sizeof(err)) != 0)
		abort();
	fz_round_trip(d, out);
	json_decref(out);
	return 0;
}
