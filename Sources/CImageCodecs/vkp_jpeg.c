// libjpeg's errors longjmp out of the library; Swift cannot catch that, so the decode lives here.
#include "vkp_jpeg.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    vkp_jpeg_result *result;
} error_manager;

typedef struct {
    struct jpeg_progress_mgr pub;
    int max_scans;
} scan_limit;

static void on_error(j_common_ptr cinfo) {
    error_manager *err = (error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->result->message);
    longjmp(err->jump, 1);
}

// Warnings (msg_level -1) are counted and the first kept; trace messages are dropped.
static void on_message(j_common_ptr cinfo, int msg_level) {
    error_manager *err = (error_manager *)cinfo->err;
    if (msg_level >= 0) return;
    if (err->result->warnings == 0) (*cinfo->err->format_message)(cinfo, err->result->message);
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->result->premature_end = 1;
    err->result->warnings += 1;
}

// A progressive file of thousands of tiny scans costs a full pass over the coefficients each:
// such files are refused (libjpeg-turbo's own TurboJPEG API offers the same limit).
static void on_progress(j_common_ptr cinfo) {
    scan_limit *limit = (scan_limit *)cinfo->progress;
    if (cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (d->input_scan_number > limit->max_scans) {
            error_manager *err = (error_manager *)cinfo->err;
            snprintf(err->result->message, sizeof err->result->message,
                     "more than %d scans (a progressive-scan bomb?)", limit->max_scans);
            longjmp(err->jump, 1);
        }
    }
}

int vkp_jpeg_decode(const unsigned char *data, size_t size, long long max_pixels, int max_scans,
                    unsigned char **pixels, vkp_jpeg_result *result) {
    struct jpeg_decompress_struct cinfo;
    error_manager err;
    scan_limit progress;
    unsigned char *volatile out = NULL;
    memset(&cinfo, 0, sizeof cinfo);   // jpeg_destroy_decompress is then safe at any point
    memset(result, 0, sizeof *result);
    *pixels = NULL;
    err.result = result;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    progress.pub.progress_monitor = on_progress;
    progress.max_scans = max_scans;
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    result->width = (int)cinfo.image_width;
    result->height = (int)cinfo.image_height;
    result->precision = cinfo.data_precision;
    if ((long long)cinfo.image_width * (long long)cinfo.image_height > max_pixels) {
        result->too_large = 1;
        snprintf(result->message, sizeof result->message, "%u×%u pixels", cinfo.image_width, cinfo.image_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    out = malloc(stride * cinfo.output_height + 1);
    if (!out) {
        snprintf(result->message, sizeof result->message, "out of memory for %u×%u pixels", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    result->width = (int)cinfo.output_width;
    result->height = (int)cinfo.output_height;
    result->components = cinfo.output_components;
    jpeg_destroy_decompress(&cinfo);
    *pixels = out;
    return 0;
}

void vkp_free(void *p) { free(p); }
