/** Sizes the mail services share (Postfix's limit, and what the quota rules compare with). */

/** 25 MiB: what most providers accept, and below Postfix's mailbox_size_limit default. */
export const MESSAGE_SIZE_LIMIT = 26_214_400;
