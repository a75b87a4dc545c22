#ifndef QTOOL_CARCHIVE_SHIM_H
#define QTOOL_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

/* inflateInit2 is a macro Swift cannot call: a gzip-only inflater (zlib checks every
   member's CRC-32 and length, which libarchive's gzip filter does not). */
static inline int qtool_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 15 + 16); }
#endif
