//! The MLP specification shared by the native ([`crate::Mlp`]) and dfdx
//! ([`crate::neural::NeuralMlp`]) implementations: shape, activation and the flat parameter
//! layout (per layer, the weight (out × in, row-major) then the bias).

use crate::{activation, Error, Result};
use serde::{Deserialize, Serialize};

/// Hidden-layer activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// tanh (revode's fast, accurate implementation on CPU).
    Tanh,
    /// log(1 + eˣ).
    Softplus,
    /// max(0, x).
    Relu,
    /// 0.909·x·sigmoid(x): 1-Lipschitz (Chen et al. 2019), used by SDE-GAN discriminators.
    LipSwish,
}

/// LipSwish's scale: 1/max|d/dx(x·σ(x))| ≈ 1/1.0998.
pub const LIPSWISH_SCALE: f64 = 0.909;

impl Activation {
    /// The activation at `z`.
    #[inline(always)]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => activation::tanh(z),
            Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
            Activation::Relu => z.max(0.0),
            Activation::LipSwish => LIPSWISH_SCALE * z / (1.0 + (-z).exp()),
        }
    }
    /// The derivative at `z`, given `a` = the activation at `z`.
    #[inline(always)]
    pub fn derivative(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - a * a,
            Activation::Softplus => 1.0 / (1.0 + (-z).exp()),
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LipSwish => {
                let s = 1.0 / (1.0 + (-z).exp());
                LIPSWISH_SCALE * (s + z * s * (1.0 - s))
            }
        }
    }
    /// The second derivative at `z`, given `a` = the activation at `z` (what forward-over-reverse
    /// differentiation needs): tanh `−2a(1 − a²)`, softplus `s(1 − s)` with `s` the sigmoid,
    /// ReLU 0 (almost everywhere), LipSwish `0.909·s(1 − s)(2 + z(1 − 2s))`.
    #[inline(always)]
    pub fn second_derivative(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Tanh => -2.0 * a * (1.0 - a * a),
            Activation::Softplus => {
                let s = 1.0 / (1.0 + (-z).exp());
                s * (1.0 - s)
            }
            Activation::Relu => 0.0,
            Activation::LipSwish => {
                let s = 1.0 / (1.0 + (-z).exp());
                LIPSWISH_SCALE * s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
            }
        }
    }
    /// Parses "tanh", "softplus", "relu" or "lipswish".
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "tanh" => Ok(Activation::Tanh),
            "softplus" => Ok(Activation::Softplus),
            "relu" => Ok(Activation::Relu),
            "lipswish" => Ok(Activation::LipSwish),
            other => Err(Error::config(
                "activation",
                format!("unknown activation '{other}' (tanh, softplus, relu, lipswish)"),
            )),
        }
    }
}

/// The shape of an MLP vector field `f(t, y)`: `dim (+1 with time) → hidden (× depth) → dim`,
/// applied to each of `batch` rows of the state (the state holds `batch × dim` entries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// State dimension per sample.
    pub dim: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Number of hidden layers (≥ 1).
    pub depth: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Whether t is an extra input (the last input column, or the first with `time_first`).
    pub time: bool,
    /// With `time`, t is the first input column instead of the last (the layout of models
    /// written as `MLP([t, y])`, e.g. ported from Diffrax or torchdiffeq).
    #[serde(default)]
    pub time_first: bool,
    /// Outputs per sample when they differ from `dim` (a matrix-valued CDE field, say);
    /// `None` for a vector field `dim → dim`.
    #[serde(default)]
    pub outputs: Option<usize>,
}

impl MlpSpec {
    /// A spec with one hidden layer of tanh.
    pub fn new(dim: usize, hidden: usize) -> Self {
        MlpSpec {
            dim,
            hidden,
            depth: 1,
            activation: Activation::Tanh,
            time: false,
            time_first: false,
            outputs: None,
        }
    }
    /// Outputs per sample: `outputs`, or `dim` when unset.
    pub fn out_dim(&self) -> usize {
        self.outputs.unwrap_or(self.dim)
    }
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.hidden == 0 || self.depth == 0 || self.out_dim() == 0 {
            return Err(Error::config(
                "mlp",
                format!(
                    "dim ({}), hidden ({}), depth ({}) and outputs ({}) must be positive",
                    self.dim,
                    self.hidden,
                    self.depth,
                    self.out_dim()
                ),
            ));
        }
        Ok(())
    }
    /// Column of t in the first layer's weight, when t is an input.
    pub fn time_column(&self) -> Option<usize> {
        self.time
            .then_some(if self.time_first { 0 } else { self.dim })
    }
    /// Column of the first state entry in the first layer's weight.
    pub fn state_column(&self) -> usize {
        (self.time && self.time_first) as usize
    }
    /// Inputs of the first layer.
    pub fn inputs(&self) -> usize {
        self.dim + self.time as usize
    }
    /// (outputs, inputs) of each layer.
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let mut v = vec![(self.hidden, self.inputs())];
        v.extend((1..self.depth).map(|_| (self.hidden, self.hidden)));
        v.push((self.out_dim(), self.hidden));
        v
    }
    /// Total number of parameters: per layer, the weight (out × in, row-major) then the bias.
    pub fn num_params(&self) -> usize {
        self.layers().iter().map(|(o, i)| o * i + o).sum()
    }
    /// Flat offset of each layer's weight.
    pub fn offsets(&self) -> Vec<usize> {
        let mut off = 0;
        self.layers()
            .iter()
            .map(|(o, i)| {
                let at = off;
                off += o * i + o;
                at
            })
            .collect()
    }
    /// Uniform ±1/√fan_in initialisation (weights and biases), deterministic in `seed`.
    pub fn init_uniform(&self, seed: u64) -> Vec<f64> {
        let mut rng = crate::random::SplitMix64::new(seed);
        let mut out = Vec::with_capacity(self.num_params());
        for (o, i) in self.layers() {
            let bound = 1.0 / (i as f64).sqrt();
            for _ in 0..o * i + o {
                out.push(rng.symmetric(bound));
            }
        }
        out
    }
}

/// Deepest supported native MLP (the offset table lives on the stack).
pub const MAX_DEPTH: usize = 15;

/// Widest hidden layer of the native MLP (its work arrays live on the stack); wider models
/// belong on dfdx.
pub const MAX_HIDDEN: usize = 512;
