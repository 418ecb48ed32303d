//! Downstream evaluation as in the paper's Table 2 (§4.3: LAMBADA perplexity and accuracy,
//! WikiText-2 and PTB perplexity, PIQA accuracy), computed as lm-evaluation-harness 0.4
//! computes them on the same local files (docs/evaluation.md), so that its numbers and
//! growlm's can be set side by side: [`tasks`] reads the files, [`score`] turns examples into
//! log-likelihood requests and scores them, and [`evaluate`] aggregates each task's metrics.

pub mod detok;
pub mod score;
pub mod tasks;

use burn::tensor::backend::Backend;
use serde::Serialize;

pub use detok::wikitext_detokenize;
pub use score::{Request, Scored, Scorer};
pub use tasks::{read_task, ChoiceDoc, Docs, TaskFile, TaskKind};

use crate::LabError;

/// One task's metrics, named as lm-evaluation-harness names them; a metric a task does not
/// have is absent.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TaskResult {
    /// The task's name.
    pub task: String,
    /// Examples scored.
    pub examples: usize,
    /// Accuracy: LAMBADA's last word predicted greedily whole; a choice task's highest
    /// log-likelihood on the label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc: Option<f64>,
    /// A choice task's accuracy with each choice's log-likelihood divided by its length in
    /// characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// LAMBADA: `exp(−mean log-likelihood of the last word)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<f64>,
    /// Rolling tasks: `exp(−Σ ll / Σ tokens)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_perplexity: Option<f64>,
    /// Rolling tasks: `exp(−Σ ll / Σ words)`, words counted as pieces between runs of
    /// whitespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub word_perplexity: Option<f64>,
    /// Rolling tasks: `exp(−Σ ll / Σ UTF-8 bytes)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_perplexity: Option<f64>,
    /// Rolling tasks: `−Σ ll / (Σ bytes · ln 2)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_byte: Option<f64>,
}

impl TaskResult {
    /// One line: the task, its examples and every metric it has.
    pub fn summary(&self) -> String {
        let metrics = [
            ("acc", self.acc),
            ("acc_norm", self.acc_norm),
            ("perplexity", self.perplexity),
            ("token_perplexity", self.token_perplexity),
            ("word_perplexity", self.word_perplexity),
            ("byte_perplexity", self.byte_perplexity),
            ("bits_per_byte", self.bits_per_byte),
        ];
        let shown: Vec<String> = metrics
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v:.4}")))
            .collect();
        format!("{} ({} examples): {}", self.task, self.examples, shown.join(", "))
    }

    fn new(task: &str, examples: usize) -> Self {
        TaskResult {
            task: task.to_string(),
            examples,
            acc: None,
            acc_norm: None,
            perplexity: None,
            token_perplexity: None,
            word_perplexity: None,
            byte_perplexity: None,
            bits_per_byte: None,
        }
    }
}

/// Words as lm-evaluation-harness counts them for a word perplexity: the pieces of
/// `re.split(r"\s+", text)`, empty leading and trailing pieces included.
pub fn count_words(text: &str) -> usize {
    let mut pieces = 1;
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                pieces += 1;
                in_space = true;
            }
        } else {
            in_space = false;
        }
    }
    pieces
}

/// The index of the largest value (the first of equal ones, as `numpy.argmax`).
fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |m, (i, &x)| if x > m.1 { (i, x) } else { m })
        .0
}

/// Scores `file`'s examples with `scorer` and aggregates its metrics.
pub fn evaluate<B: Backend>(scorer: &Scorer<'_, B>, file: &TaskFile) -> Result<TaskResult, LabError> {
    let docs = read_task(file)?;
    let context = |e: LabError| LabError::Invalid(format!("task `{}` ({}): {e}", file.name, file.path.display()));
    let mut r = TaskResult::new(&file.name, docs.len());
    match &docs {
        Docs::Lambada(texts) => {
            let reqs = texts
                .iter()
                .map(|t| {
                    let (ctx, last) = t.rsplit_once(' ').expect("read_task checked the last word");
                    scorer.request(ctx, &format!(" {last}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(context)?;
            check_fit(scorer, &reqs, |i| i).map_err(context)?;
            let s = scorer.score(&reqs).map_err(context)?;
            let n = s.len() as f64;
            r.perplexity = Some((-s.iter().map(|x| x.loglikelihood).sum::<f64>() / n).exp());
            r.acc = Some(s.iter().filter(|x| x.greedy).count() as f64 / n);
        }
        Docs::Rolling(texts) => {
            let (mut ll, mut tokens, mut words, mut bytes) = (0.0, 0usize, 0usize, 0usize);
            for t in texts {
                // WikiText is scored detokenized, and counted as it is (as lm-eval does).
                let scored = match file.kind {
                    TaskKind::Wikitext => std::borrow::Cow::Owned(wikitext_detokenize(t)),
                    _ => std::borrow::Cow::Borrowed(t.as_str()),
                };
                let (reqs, count) = scorer.rolling(&scored).map_err(context)?;
                ll += scorer
                    .score(&reqs)
                    .map_err(context)?
                    .iter()
                    .map(|x| x.loglikelihood)
                    .sum::<f64>();
                tokens += count;
                words += count_words(t);
                bytes += t.len();
            }
            r.token_perplexity = Some((-ll / tokens.max(1) as f64).exp());
            r.word_perplexity = Some((-ll / words.max(1) as f64).exp());
            r.byte_perplexity = Some((-ll / bytes.max(1) as f64).exp());
            r.bits_per_byte = Some(-ll / bytes.max(1) as f64 / std::f64::consts::LN_2);
        }
        Docs::Choice(examples) => {
            let reqs = examples
                .iter()
                .flat_map(|d| {
                    d.choices
                        .iter()
                        .map(move |c| scorer.request(&d.context, &format!(" {c}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(context)?;
            let example: Vec<usize> = (examples.iter().enumerate())
                .flat_map(|(i, d)| std::iter::repeat_n(i, d.choices.len()))
                .collect();
            check_fit(scorer, &reqs, |r| example[r]).map_err(context)?;
            let s = scorer.score(&reqs).map_err(context)?;
            let (mut at, mut right, mut right_norm) = (0, 0, 0);
            for d in examples {
                let lls: Vec<f64> = s[at..at + d.choices.len()].iter().map(|x| x.loglikelihood).collect();
                at += d.choices.len();
                let norm: Vec<f64> = lls
                    .iter()
                    .zip(&d.choices)
                    .map(|(ll, c)| ll / c.chars().count().max(1) as f64)
                    .collect();
                right += usize::from(argmax(&lls) == d.label);
                right_norm += usize::from(argmax(&norm) == d.label);
            }
            let n = examples.len() as f64;
            r.acc = Some(right as f64 / n);
            r.acc_norm = Some(right_norm as f64 / n);
        }
    }
    Ok(r)
}

/// Refuses a task with a request the model's context cannot hold, naming its example
/// (`example_of` maps a request to its example's index) and what to do.
fn check_fit<B: Backend>(
    scorer: &Scorer<'_, B>,
    reqs: &[Request],
    example_of: impl Fn(usize) -> usize,
) -> Result<(), LabError> {
    let count = reqs.iter().filter(|r| !scorer.fits(r)).count();
    match reqs.iter().position(|r| !scorer.fits(r)) {
        None => Ok(()),
        Some(i) => Err(LabError::Invalid(format!(
            "example {} (of the non-empty lines, from 1): a continuation of {} tokens does not fit the \
             model's context of {} ({count} of {} requests do not); score this task with a model \
             whose context holds its answers, or leave it out",
            example_of(i) + 1,
            reqs[i].continuation.len(),
            scorer.config.context_len,
            reqs.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_counted_as_pythons_whitespace_split_counts_them() {
        // re.split(r"\s+", s) gives: ["a", "b"], ["", "a", "b", ""], ["x"], [""].
        assert_eq!(count_words("a b"), 2);
        assert_eq!(count_words(" a \n\t b\n"), 4);
        assert_eq!(count_words("x"), 1);
        assert_eq!(count_words(""), 1);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_values() {
        assert_eq!(argmax(&[-2.0, -1.0, -1.0]), 1);
        assert_eq!(argmax(&[-3.0]), 0);
    }
}
