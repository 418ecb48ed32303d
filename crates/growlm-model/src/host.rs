//! A model's parameters on the host, by module path (`blocks.3.attn.query.weight`, the
//! paths [`GptConfig::param_specs`](crate::GptConfig::param_specs) names): read off any
//! burn module, and written back keeping their ids (docs/design.md §Model). Growth plans,
//! checkpoints' imports and Hugging Face directories all move values through these.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// A dense row-major tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            values: vec![0.0; n],
        }
    }
}

/// A parameter read off a model: its id and host value, by path.
pub type NamedParams = HashMap<String, (ParamId, HostTensor)>;

/// Every float parameter of a module in visiting order, with its path and id, and its
/// host value when `values` is set (else only its shape is read).
struct Walk {
    path: Vec<String>,
    values: bool,
    out: Vec<(String, ParamId, Vec<usize>, Option<HostTensor>)>,
}

impl<B: Backend> ModuleVisitor<B> for Walk {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let dims = value.dims().to_vec();
        let host = self.values.then(|| to_host(value));
        self.out.push((self.path.join("."), param.id, dims, host));
    }
}

fn walk<B: Backend, M: Module<B>>(module: &M, values: bool) -> Vec<(String, ParamId, Vec<usize>, Option<HostTensor>)> {
    let mut w = Walk {
        path: Vec::new(),
        values,
        out: Vec::new(),
    };
    module.visit(&mut w);
    w.out
}

/// Reads every float parameter of `module` with its path.
pub fn named_params<B: Backend, M: Module<B>>(module: &M) -> NamedParams {
    walk::<B, M>(module, true)
        .into_iter()
        .filter_map(|(path, id, _, host)| Some((path, (id, host?))))
        .collect()
}

/// The shape of every float parameter of `module` with its path, in visiting order
/// (nothing is copied).
pub fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    walk::<B, M>(module, false)
        .into_iter()
        .map(|(path, _, dims, _)| (path, dims))
        .collect()
}

/// The float parameters of `module` by path, values only (no ids).
pub fn param_values<B: Backend, M: Module<B>>(module: &M) -> HashMap<String, HostTensor> {
    named_params::<B, M>(module)
        .into_iter()
        .map(|(path, (_, t))| (path, t))
        .collect()
}

struct Assign<'a> {
    path: Vec<String>,
    values: &'a HashMap<String, HostTensor>,
}

impl<B: Backend> ModuleMapper<B> for Assign<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(v) = self.values.get(&self.path.join(".")) else {
            return param;
        };
        let (id, tensor, _) = param.consume();
        let device = tensor.device();
        let t = Tensor::<B, D>::from_data(TensorData::new(v.values.clone(), v.shape.clone()), &device);
        Param::initialized(id, t.require_grad())
    }
}

/// Replaces the values of `module`'s parameters named in `values`, keeping their ids.
pub fn assign_params<B: Backend, M: Module<B>>(module: M, values: &HashMap<String, HostTensor>) -> M {
    module.map(&mut Assign {
        path: Vec::new(),
        values,
    })
}

/// Copies a tensor to the host as `f32`.
pub fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let shape = t.dims().to_vec();
    HostTensor {
        shape,
        values: t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data"),
    }
}
