#ifndef VKP_JPEG_H
#define VKP_JPEG_H
#include <stddef.h>

/// What one JPEG decode found. `message` holds the error (status != 0) or else the first warning.
typedef struct {
    int width, height;
    /// Components of `pixels` per pixel: 3 (RGB) or 4 (CMYK as libjpeg writes it, Adobe-inverted).
    int components;
    /// Sample precision declared by the frame header (8, or 12/16 which this build refuses).
    int precision;
    /// libjpeg warnings (corrupt-data messages that libjpeg recovers from) and whether one of them
    /// was "Premature end of JPEG file" (the stream ended before the image: a truncated file).
    int warnings;
    int premature_end;
    /// 1: the declared size exceeds `max_pixels` (nothing was allocated for it).
    int too_large;
    char message[200];
} vkp_jpeg_result;

/// Decodes a whole JPEG held in memory, as PIL does for `convert("RGB")`: accurate integer IDCT,
/// fancy upsampling; greyscale, YCbCr and RGB to RGB; CMYK and YCCK to CMYK. Every call has its
/// own libjpeg state, created and destroyed here, so no failure can affect a later call.
/// Returns 0 and `*pixels` (malloc'd, width·height·components bytes; free with vkp_free), or -1
/// with `result->message` (libjpeg's error) and `*pixels` NULL. A file declaring more than
/// `max_pixels` pixels, or with more than `max_scans` scans, is refused before its data is read.
int vkp_jpeg_decode(const unsigned char *data, size_t size, long long max_pixels, int max_scans,
                    unsigned char **pixels, vkp_jpeg_result *result);

void vkp_free(void *p);

#endif
