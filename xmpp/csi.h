/* Client State Indication (XEP-0352) for sessions whose client says it is inactive: which
 * stanzas from the server matter now, which may wait, and which a newer one replaces. */
#ifndef GW_CSI_H
#define GW_CSI_H

#include "xmpp/xml.h"

enum gw_csi_class {
    GW_CSI_URGENT,   /* deliver at once (and worth a push while the client is away) */
    GW_CSI_HOLD,     /* may wait; kept in order */
    GW_CSI_COALESCE, /* may wait; a newer stanza with the same key supersedes it */
};

/* Classifies a stanza from the server. URGENT: iq, errors, subscription requests, messages
 * with a body (in a groupchat only when the body mentions `mention`, the user's nickname, if
 * given), an encrypted payload, a MUC invite, or a call proposal (XEP-0353); carbons
 * (XEP-0280) of received messages are judged by the message they carry. COALESCE: other
 * presence (key "p " + from) and bare chat states (key "cs " + from). HOLD: the rest
 * (receipts, markers, groupchat chatter, carbons of sent messages). For COALESCE an owned key
 * is written to *key; otherwise *key is NULL. */
enum gw_csi_class gw_csi_classify(const struct gw_xml *el, const char *mention, char **key);

#endif
