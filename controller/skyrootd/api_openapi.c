/* GET /v1/openapi.json (being written). */
#include "controller/skyrootd/api_priv.h"

const struct api_route api_openapi_routes[] = {
	{ .path = NULL },
};
