/*
 * resume.h - positions in a channel's history and the resume string that
 * carries a client's three of them (docs/protocol.md, "Recovery").
 *
 * A position is (epoch, offset): the offset increases by one per message in
 * the channel; the epoch names one unbroken history of the channel and
 * changes only when that history is lost. A client that reconnects with
 * `since=<resume string>` names the last position it saw in its session,
 * event and organization channels:
 *
 *   h1.<session epoch>.<offset>.<event epoch>.<offset>.<organization epoch>.<offset>
 *
 * epochs as 16 lowercase hex digits, offsets as decimal numbers. The string
 * names no channel: the channels are those of the connection's token, so a
 * string from another room can never read that room (its epochs simply do
 * not match).
 */
#ifndef HUBBUB_RESUME_H
#define HUBBUB_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/scope.h"
#include "hubbub/strbuf.h"

typedef struct {
  uint64_t epoch; /* never 0 for a channel that exists */
  uint64_t offset; /* the last message's offset; 0 before the first */
} hb_pos;

/* The longest resume string: "h1" and three 16-digit epochs and 20-digit offsets. */
#define HB_RESUME_MAX_BYTES (2 + HB_SCOPE__COUNT * (1 + 16 + 1 + 20))

#define HB_EPOCH_HEX_DIGITS 16

/** Parse an epoch as the protocol writes it: exactly 16 lowercase hex
 * digits, not zero. */
bool hb_resume_parse_epoch(const char *s, size_t n, uint64_t *out);
/** Parse an offset: decimal, no sign, no leading zero, fits 64 bits. */
bool hb_resume_parse_offset(const char *s, size_t n, uint64_t *out);
/** Write an epoch's 16 lowercase hex digits (no NUL). */
void hb_resume_epoch_hex(uint64_t epoch, char out[HB_EPOCH_HEX_DIGITS]);

/** Parse a resume string strictly (the format above, nothing else). */
bool hb_resume_parse(const char *s, size_t len, hb_pos out[HB_SCOPE__COUNT]);
/** An offset as the resume string writes it: decimal, no sign, no leading
 * zero (one spelling per number), fitting 64 bits. */
bool hb_resume_parse_offset(const char *s, size_t n, uint64_t *out);
/** Append the resume string of three positions (indexed by hb_scope). */
void hb_resume_format(hb_strbuf *sb, const hb_pos pos[HB_SCOPE__COUNT]);

#endif
