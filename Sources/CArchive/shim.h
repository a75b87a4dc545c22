#ifndef QTOOL_CARCHIVE_SHIM_H
#define QTOOL_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
