//! The burn side of the fused kernels: each kernel as an op on burn-flex and a custom
//! autodiff op on `Autodiff<Flex>`, dispatched from any backend.

pub(crate) mod attention;
pub(crate) mod entropy;
pub(crate) mod gelu;
pub(crate) mod norm;
