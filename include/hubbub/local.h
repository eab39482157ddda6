/*
 * local.h - the in-process broker (broker.h): one node, every thread of
 * this process. The embedded default.
 */
#ifndef HUBBUB_LOCAL_H
#define HUBBUB_LOCAL_H

#include "hubbub/broker.h"

hb_broker *hb_broker_local_new(void);

#endif
