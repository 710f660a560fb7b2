// Validate an OpenAPI document with @apidevtools/swagger-parser: its
// structure against the OpenAPI 3.0 schema, and every $ref.
// Usage: node openapi_validate.js PREFIX FILE (PREFIX: where npm installed it).
'use strict';
const path = require('path');
const SwaggerParser = require(path.join(process.argv[2], 'node_modules', '@apidevtools', 'swagger-parser'));

SwaggerParser.validate(process.argv[3])
	.then((api) => {
		console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
	})
	.catch((err) => {
		console.error(`invalid: ${err.message}`);
		process.exit(1);
	});
