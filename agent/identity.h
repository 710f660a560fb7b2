/* The board's identity kept across agent restarts, in RAM only.
 *
 * With --identity-dir (the firmware uses /run/skyroot/identity, a tmpfs:
 * RAM, never a disk) the key and certificate survive a crash of the agent,
 * so the supervisor's restart does not need the (used) enrollment token.
 * The folder is 0700, its files 0600.  Library code: nothing here logs. */
#ifndef SKY_AGENT_IDENTITY_H
#define SKY_AGENT_IDENTITY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* Write the key and certificate (identity.pem) and the controller's
 * image-signing key (signing.pub, 64 hex digits and a newline) into dir,
 * each atomically.  0 or a negative errno; *failed names the file. */
int agent_identity_save(const char *dir, EVP_PKEY *key, X509 *cert, const uint8_t signing_pub[32],
			const char **failed);

/* Read them back.  The certificate must match the key; board_id is its CN.
 * 0, -ENOENT when nothing is kept, -EINVAL when what is kept is unusable.
 * Nothing is written on failure. */
int agent_identity_load(const char *dir, EVP_PKEY **key, X509 **cert, uint8_t signing_pub[32], char *board_id,
			size_t board_id_len);

/* Remove the kept key and certificate (the board was deleted). */
void agent_identity_forget(const char *dir);

#endif
