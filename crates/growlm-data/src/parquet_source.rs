//! Parquet corpus files (docs/training.md §Corpora): one document per row of a string
//! column, read with arrow-rs' `parquet` crate a bounded number of rows at a time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parquet::basic::{ConvertedType, LogicalType, Type as Physical};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::source::{row_piece, DocOptions, Piece, PARQUET_ROWS};
use crate::DataError;

/// The most a column chunk may claim to hold uncompressed; the reader decompresses a page
/// at a time, and a chunk claiming more than this is refused before any is read.
const MAX_CHUNK_BYTES: i64 = 16 << 30;

/// Reads the rows of `opts.text_key` in `file`, handing them to `sink` in batches of about
/// `batch_bytes`. A panic of the `parquet` crate on a malformed file is an error here.
pub(crate) fn read_rows(
    file: &Path,
    opts: &DocOptions,
    batch_bytes: usize,
    read: &Arc<AtomicU64>,
    sink: &mut dyn FnMut(Vec<Piece>) -> Result<(), DataError>,
) -> Result<u64, DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: file.to_path_buf(),
        reason,
    };
    let f = std::fs::File::open(file).map_err(|error| DataError::NoSuchSource {
        path: file.to_path_buf(),
        error,
    })?;
    let reader = guard(file, || SerializedFileReader::new(f))?
        .map_err(|e| corrupt(format!("not a readable Parquet file ({e})")))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
    let Some(col) = names.iter().position(|n| *n == opts.text_key) else {
        let nested = format!("{}.", opts.text_key);
        if let Some(n) = names.iter().find(|n| n.starts_with(&nested)) {
            return Err(corrupt(format!(
                "column `{}` is a list or struct (`{n}`), not a string column; set data.text_key to a string column",
                opts.text_key
            )));
        }
        return Err(corrupt(format!(
            "no column `{}` (columns: {}); set data.text_key to the column that holds the text",
            opts.text_key,
            names
                .iter()
                .take(8)
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let desc = schema.column(col);
    let is_string =
        matches!(desc.logical_type_ref(), Some(LogicalType::String)) || desc.converted_type() == ConvertedType::UTF8;
    if desc.physical_type() != Physical::BYTE_ARRAY || !is_string || desc.max_rep_level() > 0 {
        let what = if desc.max_rep_level() > 0 {
            "a list".to_string()
        } else {
            format!("{} ({:?})", desc.physical_type(), desc.logical_type_ref())
        };
        return Err(corrupt(format!(
            "column `{}` is {what}, not a string column; set data.text_key to a string column",
            opts.text_key
        )));
    }
    let max_def = desc.max_def_level();
    let (mut batch, mut bytes, mut row, mut count) = (Vec::new(), 0usize, 0u64, 0u64);
    for g in 0..reader.num_row_groups() {
        let group = guard(file, || reader.get_row_group(g))?.map_err(|e| corrupt(format!("row group {g}: {e}")))?;
        let chunk = group.metadata().column(col);
        if chunk.uncompressed_size() > MAX_CHUNK_BYTES || chunk.uncompressed_size() < 0 {
            return Err(corrupt(format!(
                "row group {g} claims {} bytes for column `{}`, more than growlm reads ({MAX_CHUNK_BYTES}); the file is damaged",
                chunk.uncompressed_size(),
                opts.text_key
            )));
        }
        let column =
            guard(file, || group.get_column_reader(col))?.map_err(|e| corrupt(format!("row group {g}: {e}")))?;
        let group_start = row;
        let ColumnReader::ByteArrayColumnReader(mut values_reader) = column else {
            return Err(corrupt(format!(
                "column `{}` is not a byte-array column",
                opts.text_key
            )));
        };
        loop {
            let (mut defs, mut values) = (Vec::<i16>::new(), Vec::<ByteArray>::new());
            let (records, _, _) = guard(file, || {
                values_reader.read_records(PARQUET_ROWS, Some(&mut defs), None, &mut values)
            })?
            .map_err(|e| corrupt(format!("row group {g}, near row {row}: {e}")))?;
            if records == 0 {
                break;
            }
            let mut values = values.into_iter();
            for i in 0..records {
                let present = max_def == 0 || defs.get(i) == Some(&max_def);
                let raw = if present {
                    let v = values
                        .next()
                        .ok_or_else(|| corrupt(format!("row {row}: fewer values than rows; the file is damaged")))?;
                    Some(v.data().to_vec())
                } else {
                    None
                };
                bytes += raw.as_ref().map_or(0, Vec::len);
                batch.push(row_piece(row, raw));
                row += 1;
                count += 1;
            }
            if bytes >= batch_bytes {
                sink(std::mem::take(&mut batch))?;
                bytes = 0;
            }
        }
        let claimed = group.metadata().num_rows();
        if i64::try_from(row - group_start) != Ok(claimed) {
            return Err(corrupt(format!(
                "row group {g} claims {claimed} rows but holds {}; the file is damaged",
                row - group_start
            )));
        }
        read.fetch_add(chunk.compressed_size().max(0) as u64, Ordering::Relaxed);
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(count)
}

/// Runs a call into the `parquet` crate, turning a panic on a malformed file into an error.
fn guard<T>(file: &Path, f: impl FnOnce() -> T) -> Result<T, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| DataError::Corrupt {
        path: file.to_path_buf(),
        reason: "the Parquet reader could not read it (it panicked); the file is damaged".into(),
    })
}
