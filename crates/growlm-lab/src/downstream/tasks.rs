//! Task files (docs/evaluation.md): JSONL, one example per line, in the fields
//! lm-evaluation-harness's tasks read, turned into the requests it would make. Every file is
//! bounded before it is read, and a bad line is refused naming the file and the line.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::LabError;

/// Largest task file read (256 MiB).
pub const MAX_TASK_BYTES: u64 = 256 << 20;
/// Largest line of a task file (4 MiB).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// What a task measures and how it reads its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// LAMBADA (`text`): perplexity of the last word given the passage, and accuracy with
    /// the whole last word predicted greedily.
    Lambada,
    /// WikiText-2 (`page`, or `text`): rolling-window perplexity per token, word and byte.
    Wikitext,
    /// Penn Treebank (`sentence`, or `text` as Paloma's `ptb` has it): as WikiText.
    Ptb,
    /// PIQA (`goal`, `sol1`, `sol2`, `label`): `Question: {goal}\nAnswer:` and the two
    /// solutions; accuracy and length-normalised accuracy.
    Piqa,
    /// Any multiple-choice set (`context`, `choices`, `label`), HellaSwag-like.
    Choice,
}

impl TaskKind {
    /// Every task by the name `--task NAME=PATH` gives it.
    pub const NAMES: &'static [(&'static str, TaskKind)] = &[
        ("lambada", TaskKind::Lambada),
        ("wikitext2", TaskKind::Wikitext),
        ("ptb", TaskKind::Ptb),
        ("piqa", TaskKind::Piqa),
        ("choice", TaskKind::Choice),
    ];

    /// The task named `name`, or an error listing the names.
    pub fn named(name: &str) -> Result<TaskKind, LabError> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "unknown task `{name}`; the tasks are {}",
                    Self::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            })
    }
}

/// One `--task NAME=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// The task's name as given.
    pub name: String,
    /// What it measures.
    pub kind: TaskKind,
    /// Its JSONL file.
    pub path: PathBuf,
}

impl TaskFile {
    /// Parses `NAME=PATH`.
    pub fn parse(arg: &str) -> Result<TaskFile, LabError> {
        let (name, path) = arg.split_once('=').ok_or_else(|| {
            LabError::Invalid(format!("--task {arg}: give NAME=PATH, e.g. lambada=lambada_test.jsonl"))
        })?;
        Ok(TaskFile {
            name: name.to_string(),
            kind: TaskKind::named(name)?,
            path: PathBuf::from(path),
        })
    }
}

/// A multiple-choice example: the context and each choice (the continuation is `" "` and
/// the choice), and the right one.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceDoc {
    /// What every choice continues.
    pub context: String,
    /// The choices, without the space that joins them to the context.
    pub choices: Vec<String>,
    /// The index of the right choice.
    pub label: usize,
}

/// A task file's examples.
#[derive(Debug, Clone, PartialEq)]
pub enum Docs {
    /// LAMBADA passages.
    Lambada(Vec<String>),
    /// Documents scored whole (WikiText, PTB).
    Rolling(Vec<String>),
    /// Multiple-choice examples (PIQA and others).
    Choice(Vec<ChoiceDoc>),
}

impl Docs {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Docs::Lambada(d) | Docs::Rolling(d) => d.len(),
            Docs::Choice(d) => d.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads `file`'s examples. A file over [`MAX_TASK_BYTES`] or not UTF-8, a line over
/// [`MAX_LINE_BYTES`] or not a JSON object, a missing or mistyped field, a label out of range
/// and a file with no example are refused, naming the file and the line.
pub fn read_task(file: &TaskFile) -> Result<Docs, LabError> {
    let path = &file.path;
    let size = std::fs::metadata(path).map_err(LabError::io(path))?.len();
    if size > MAX_TASK_BYTES {
        return Err(bad(
            path,
            None,
            format!("{size} bytes, more than a task file may have ({MAX_TASK_BYTES})"),
        ));
    }
    let bytes = std::fs::read(path).map_err(LabError::io(path))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        bad(path, Some(line), "not UTF-8".into())
    })?;
    let mut docs = match file.kind {
        TaskKind::Lambada => Docs::Lambada(Vec::new()),
        TaskKind::Wikitext | TaskKind::Ptb => Docs::Rolling(Vec::new()),
        TaskKind::Piqa | TaskKind::Choice => Docs::Choice(Vec::new()),
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(bad(
                path,
                Some(n),
                format!("{} bytes, more than a line may have ({MAX_LINE_BYTES})", line.len()),
            ));
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| bad(path, Some(n), format!("not a JSON object ({e}); one example per line")))?;
        let field = |key: &str| -> Result<String, LabError> {
            match v.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(bad(path, Some(n), format!("field `{key}` is {other}, not a string"))),
                None => Err(bad(path, Some(n), format!("no field `{key}`"))),
            }
        };
        let label = |count: usize| -> Result<usize, LabError> {
            let l = v
                .get("label")
                .ok_or_else(|| bad(path, Some(n), "no field `label`".into()))?;
            let i = l
                .as_u64()
                .or_else(|| l.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad(path, Some(n), format!("`label` is {l}, not a choice's index")))?;
            match usize::try_from(i) {
                Ok(i) if i < count => Ok(i),
                _ => Err(bad(
                    path,
                    Some(n),
                    format!("`label` is {i}, out of range for {count} choices"),
                )),
            }
        };
        match (&mut docs, file.kind) {
            (Docs::Lambada(d), _) => {
                let t = field("text")?;
                if !t.trim().contains(' ') {
                    return Err(bad(path, Some(n), "`text` has no last word after a space".into()));
                }
                d.push(t);
            }
            (Docs::Rolling(d), kind) => {
                // lm-eval's PTB (Paloma's `ptb`) has `text`; the older PTB sets `sentence`.
                let key = if kind == TaskKind::Ptb { "sentence" } else { "page" };
                d.push(if v.get(key).is_none() && v.get("text").is_some() {
                    field("text")?
                } else {
                    field(key)?
                });
            }
            (Docs::Choice(d), TaskKind::Piqa) => {
                let (goal, choices) = (field("goal")?, vec![field("sol1")?, field("sol2")?]);
                d.push(ChoiceDoc {
                    context: format!("Question: {goal}\nAnswer:"),
                    label: label(2)?,
                    choices,
                });
            }
            (Docs::Choice(d), _) => {
                let choices: Vec<String> = match v.get("choices") {
                    Some(Value::Array(a)) if !a.is_empty() => a
                        .iter()
                        .map(|c| c.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| bad(path, Some(n), "`choices` holds a value that is not a string".into()))?,
                    _ => return Err(bad(path, Some(n), "no field `choices` with at least one string".into())),
                };
                d.push(ChoiceDoc {
                    context: field("context")?,
                    label: label(choices.len())?,
                    choices,
                });
            }
        }
    }
    if docs.is_empty() {
        return Err(bad(path, None, "has no example; one JSON object per line".into()));
    }
    Ok(docs)
}

fn bad(path: &Path, line: Option<usize>, reason: String) -> LabError {
    let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
    LabError::Invalid(format!("{}{at}: {reason}", path.display()))
}
