//! Every family's description against every registered depth operator: the operators a
//! family lists as preserving (`FamilyDesc::preserving_depth`) keep its logits exactly at
//! growth, with perturbed norms and biases (Qwen2's q/k/v biases included), and every other
//! operator changes them; the family's default depth operator is one that preserves. Width
//! growth by cloning and by masks is checked on every family too.

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_model::{GptConfig, FAMILIES};
use growlm_ops::{depth, logit_change, GrowthConfig};

type A = Autodiff<Flex>;

/// A small model of `family`: 4 heads, grouped 2 to a key/value head where the family
/// groups them.
fn model(family: &growlm_model::FamilyDesc, d: usize, layers: usize) -> GptConfig {
    GptConfig {
        family: family.family,
        n_kv_heads: family.grouped_kv.then_some(d / 8),
        ffn_dim: Some(d * 5 / 2),
        ..GptConfig::new(50, 8, d, layers, d / 4)
    }
}

#[test]
fn each_family_lists_exactly_the_depth_operators_that_keep_its_function() {
    for family in FAMILIES {
        let (s, t) = (model(family, 16, 2), model(family, 16, 4));
        assert!(
            family.preserving_depth.contains(&family.default_depth),
            "{}: the default depth operator must preserve",
            family.name
        );
        for op in depth::ALL {
            let growth = match op.name {
                "msg" => GrowthConfig::named("msg", "msg", 10),
                name => GrowthConfig::named("pdg", name, 0),
            }
            .unwrap();
            let change = logit_change::<A>(&s, &t, &growth, &Default::default()).unwrap();
            if family.preserving_depth.contains(&op.name) {
                assert!(change <= 1e-5, "{} {}: logits change by {change}", family.name, op.name);
            } else {
                assert!(
                    change > 1e-4,
                    "{} {}: logits change by only {change}",
                    family.name,
                    op.name
                );
            }
        }
    }
}

#[test]
fn each_family_grows_in_width_by_cloning_and_by_masks() {
    for family in FAMILIES {
        let (s, t) = (model(family, 16, 2), model(family, 32, 3));
        let default = family.default_depth;
        for (width, depth, ramp) in [("hypercloning", default, 0), ("pdg", default, 10), ("msg", "msg", 10)] {
            let op = GrowthConfig::named(width, depth, ramp).unwrap();
            let change = logit_change::<A>(&s, &t, &op, &Default::default()).unwrap();
            assert!(
                change <= 1e-5,
                "{} {width}+{depth}: logits change by {change}",
                family.name
            );
        }
    }
}
