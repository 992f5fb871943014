/* C wrappers over libjpeg-turbo, libpng and (loaded on demand) the DICOM shim. */
#ifndef CCODECS_H
#define CCODECS_H
#include <stddef.h>
#include <stdint.h>
#endif
