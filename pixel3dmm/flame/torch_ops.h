#pragma once
/// The FLAME skinning ops as PyTorch operators, beside the render ops of render/torch_ops.h in the `pixel3dmm`
/// namespace (`torch.ops.pixel3dmm.<name>` once the library is loaded; callable from TorchScript):
///
///   blend(Tensor coeffs, Tensor basis, Tensor? base=None) -> Tensor   base + coeffs @ basis (lbs.h `blend`)
///   skin(Tensor vertices, Tensor relative, Tensor weights) -> Tensor  linear blend skinning (lbs.h `skin`)
///
/// Shapes, dtypes and gradients as the functions of lbs.h, which these shells call (CompositeImplicitAutograd
/// kernels: autograd records the library's own backward functions).
