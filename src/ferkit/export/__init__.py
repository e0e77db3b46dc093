"""From runs to shipped files: `torch_export` (run folders to ONNX, needs torch), then, on
ONNX files alone, `compose` (ensembles), `choose` (members picked on PublicTest) and
`quantize` (int8); `pipeline` runs `ferkit export` through them in that order."""
