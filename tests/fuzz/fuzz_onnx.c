/* Fuzz target: the ONNX importer (protobuf decoding, tensors, attributes,
 * shapes, every op's translation) on any bytes. */
#include "frontend/onnx/onnx.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Diags d;
    diags_init(&d);
    OnnxImport im;
    if (fe_onnx_import("fuzz.onnx", data, size, &im, &d))
        fe_onnx_import_free(&im);
    diags_free(&d);
    return 0;
}
