/* A guest's NICs in the API's JSON (api_json.h): "nics" of POST /v1/guests
 * and of a GUEST.  Below api_json.c: it calls nothing of it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "controller/skyrootd/api_json.h"

#define AJ_NIC_EXAMPLE "[{\"network\": \"prod\"}, {\"network\": \"mgmt\", \"mac\": \"02:53:4b:00:00:01\"}]"

int api_json_parse_nics(json_t *guest, struct api_nic_body *out, unsigned *n, char *err, size_t errlen)
{
	json_t *nics = json_object_get(guest, "nics"), *nic;
	size_t i;

	*n = 0;
	if (!nics || json_is_null(nics))
		return 0;
	if (!json_is_array(nics) || json_array_size(nics) > SKY_GUEST_NICS_MAX) {
		snprintf(err, errlen, "guest.nics must be a list of at most %u NICs like %s", SKY_GUEST_NICS_MAX,
			 AJ_NIC_EXAMPLE);
		return -EINVAL;
	}
	json_array_foreach(nics, i, nic) {
		json_t *v, *net = json_object_get(nic, "network"), *mac = json_object_get(nic, "mac");
		const char *key;
		uint8_t m[6];
		char what[40];

		snprintf(what, sizeof(what), "guest.nics[%zu]", i);
		if (!json_is_object(nic)) {
			snprintf(err, errlen, "%s must be an object like {\"network\": \"prod\"}", what);
			return -EINVAL;
		}
		json_object_foreach(nic, key, v) {
			if (strcmp(key, "network") != 0 && strcmp(key, "mac") != 0) {
				snprintf(err, errlen, "unknown field '%.64s' in %s; known: network, mac", key, what);
				return -EINVAL;
			}
		}
		if (!json_is_string(net) || json_string_length(net) == 0 ||
		    json_string_length(net) >= sizeof(out[i].network) ||
		    strlen(json_string_value(net)) != json_string_length(net)) {
			snprintf(err, errlen, "%s.network must be a network's id or name (1-%u bytes)", what, SKY_NAME_MAX);
			return -EINVAL;
		}
		memset(&out[i], 0, sizeof(out[i]));
		memcpy(out[i].network, json_string_value(net), json_string_length(net) + 1);
		if (mac && !json_is_null(mac)) {
			if (!json_is_string(mac) || sky_parse_mac(json_string_value(mac), m) < 0) {
				snprintf(err, errlen, "%s.mac must be a MAC address like 02:53:4b:00:00:01", what);
				return -EINVAL;
			}
			sky_format_mac(m, out[i].mac);
		}
		(*n)++;
	}
	return 0;
}

json_t *api_json_nics(const struct guest *g)
{
	json_t *arr = json_array();

	for (unsigned i = 0; arr && i < g->n_nics; i++) {
		const struct guest_nic *n = &g->nics[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "network", n->network, "network_id", n->network_id, "mac",
				      n->mac, "vlan", n->vlan ? json_integer(n->vlan) : json_null());

		if (json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}
