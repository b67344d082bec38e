// The one header Swift imports for hiredis.
//
// Debian ships hiredis 0.14, whose API differs from hiredis 1.x (no
// redisOptions, no separate connect and command timeouts, no RESP3), so the
// Swift side is written against /usr/include/hiredis/hiredis.h as it is here.
// The path includes the `hiredis/` folder so the build also works where
// pkg-config adds no include path of its own.
#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

#endif
