/* The controller's TLS certificate checked against the CA pin (skyroot.ca=):
 * the same pin for every controller the board knows (agent/ctlset.h). */
#ifndef SKY_AGENT_PIN_H
#define SKY_AGENT_PIN_H

#include <openssl/ssl.h>
#include <stdint.h>

/* What one connection's check needs, and why it failed (verify_error[0]
 * != '\0' when the pin or the chain refused the controller). */
struct agent_pin_check {
	const uint8_t *pin; /* SHA-256 of the CA certificate's DER */
	char verify_error[256];
};

/* The process's client SSL_CTX (TLS 1.3, peer verified through the pin
 * check), made once.  NULL when out of memory. */
SSL_CTX *agent_pin_ctx(void);
/* Attach check to ssl (before the handshake). */
void agent_pin_attach(SSL *ssl, struct agent_pin_check *check);

#endif
