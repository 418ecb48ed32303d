//! Nonlinear least squares with argmin (the fits of paper eq. 1's curve models and of the
//! law `L(N, D)`): a problem gives its residuals and their gradients ([`Residuals`]);
//! [`LeastSquares`] is its sum of squares with the gradient, minimised by L-BFGS and
//! Nelder–Mead.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

/// A least-squares problem over raw parameters `z`: each point's residual (prediction −
/// observation) and the prediction's gradient in `z`. [`LeastSquares`] makes it an
/// argmin problem.
pub trait Residuals {
    /// Each point's residual.
    fn residuals(&self, z: &[f64]) -> Vec<f64>;
    /// Each point's prediction's gradient in `z`, in the order of [`Residuals::residuals`].
    fn gradients(&self, z: &[f64]) -> Vec<Vec<f64>>;
}

/// The sum of squared residuals `Σ rᵢ²` of a [`Residuals`] problem as argmin's cost
/// (`f64::MAX` where it is not finite) with its gradient `Σ 2·rᵢ·∇rᵢ`.
pub struct LeastSquares<P>(pub P);

impl<P: Residuals> LeastSquares<P> {
    /// The cost's gradient by central differences of step `h`: to check a new
    /// [`Residuals`]' gradients against.
    pub fn finite_difference_gradient(&self, z: &[f64], h: f64) -> Vec<f64> {
        let cost = |z: Vec<f64>| self.cost(&z).unwrap_or(f64::NAN);
        (0..z.len())
            .map(|i| {
                let (mut up, mut down) = (z.to_vec(), z.to_vec());
                up[i] += h;
                down[i] -= h;
                (cost(up) - cost(down)) / (2.0 * h)
            })
            .collect()
    }
}

impl<P: Residuals> CostFunction for LeastSquares<P> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, z: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let sse: f64 = self.0.residuals(z).iter().map(|r| r * r).sum();
        Ok(if sse.is_finite() { sse } else { f64::MAX })
    }
}

impl<P: Residuals> Gradient for LeastSquares<P> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, z: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        let mut g = vec![0.0; z.len()];
        for (r, dr) in self.0.residuals(z).into_iter().zip(self.0.gradients(z)) {
            for (gi, di) in g.iter_mut().zip(dr) {
                *gi += 2.0 * r * di;
            }
        }
        Ok(g)
    }
}

/// L-BFGS from `z0` on any least-squares objective of this crate; the best point and cost.
pub(crate) fn run_lbfgs<O>(obj: O, z0: Vec<f64>, tolerance: f64, iters: u64) -> Option<(Vec<f64>, f64)>
where
    O: CostFunction<Param = Vec<f64>, Output = f64> + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_cost(tolerance)
        .ok()?
        .with_tolerance_grad(tolerance * 100.0)
        .ok()?;
    let res = Executor::new(obj, solver)
        .configure(|s| s.param(z0).max_iters(iters))
        .run()
        .ok()?;
    let state = res.state();
    Some((state.get_best_param()?.clone(), state.get_best_cost()))
}

/// Nelder–Mead from a simplex around `z0` (each axis moved by `step`).
pub(crate) fn run_nelder_mead<O>(obj: O, z0: Vec<f64>, step: f64, tolerance: f64, iters: u64) -> Option<(Vec<f64>, f64)>
where
    O: CostFunction<Param = Vec<f64>, Output = f64>,
{
    let mut simplex = vec![z0.clone()];
    for i in 0..z0.len() {
        let mut z = z0.clone();
        z[i] += step;
        simplex.push(z);
    }
    let solver = NelderMead::new(simplex).with_sd_tolerance(tolerance).ok()?;
    let res = Executor::new(obj, solver)
        .configure(|s| s.max_iters(iters))
        .run()
        .ok()?;
    let state = res.state();
    Some((state.get_best_param()?.clone(), state.get_best_cost()))
}
