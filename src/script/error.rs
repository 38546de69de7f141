//! Script errors, rendered with the file, line, column and the offending line.

use std::collections::BTreeMap;
use std::fmt;

use rhai::{EvalAltResult, ParseError, Position};

/// A script that did not run, pointing into the source.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// What went wrong.
    pub message: String,
    /// File (script or module) the error is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// The source line.
    pub source_line: Option<String>,
    /// Call chain (`in call to fn ...`).
    pub notes: Vec<String>,
}

impl std::error::Error for ScriptError {}

impl ScriptError {
    /// An error not tied to a position.
    pub fn plain(file: &str, message: impl Into<String>) -> Self {
        ScriptError {
            message: message.into(),
            file: file.into(),
            line: None,
            column: None,
            source_line: None,
            notes: Vec::new(),
        }
    }

    fn at(file: &str, pos: Position, message: String, sources: &BTreeMap<String, String>) -> Self {
        let line = pos.line();
        let source_line =
            line.and_then(|l| sources.get(file).and_then(|s| s.split('\n').nth(l - 1)).map(str::to_string));
        let (line, column) = (line.map(|l| l as u32), pos.position().map(|c| c as u32));
        ScriptError { message, file: file.into(), line, column, source_line, notes: Vec::new() }
    }

    /// At the script position an object of the plan was made (`main` is the main script).
    pub fn at_span(main: &str, span: &crate::plan::Span, message: String, sources: &BTreeMap<String, String>) -> Self {
        let file = span.file.as_deref().unwrap_or(main);
        let pos = Position::new(span.line.try_into().unwrap_or(u16::MAX), span.column.try_into().unwrap_or(u16::MAX));
        Self::at(file, pos, message, sources)
    }

    /// From a parse error of `file`.
    pub fn from_parse(file: &str, e: &ParseError, sources: &BTreeMap<String, String>) -> Self {
        Self::at(file, e.position(), format!("syntax error: {}", e.err_type()), sources)
    }

    /// From a runtime error of the script `main`, following calls into functions and modules.
    pub fn from_eval(main: &str, e: &EvalAltResult, sources: &BTreeMap<String, String>) -> Self {
        let mut file = main.to_string();
        let mut err = e;
        let mut notes = Vec::new();
        loop {
            match err {
                EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                    notes.push(format!("in call to fn `{name}` at {file}:{}", pos.line().unwrap_or(0)));
                    if !src.is_empty() {
                        file = src.clone();
                    }
                    err = inner;
                }
                EvalAltResult::ErrorInModule(path, inner, pos) => {
                    notes.push(format!("in module `{path}` imported at {file}:{}", pos.line().unwrap_or(0)));
                    if !path.is_empty() {
                        file = path.clone();
                    }
                    err = inner;
                }
                _ => break,
            }
        }
        let message = match err {
            EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
            EvalAltResult::ErrorTooManyOperations(_) => {
                "the script ran too long (operation limit reached): is there an endless loop?".into()
            }
            EvalAltResult::ErrorStackOverflow(_) => "recursion too deep (call depth limit reached)".into(),
            EvalAltResult::ErrorDataTooLarge(what, _) => format!("{what} grew beyond the sandbox limit"),
            EvalAltResult::ErrorFunctionNotFound(sig, _) => {
                format!(
                    "unknown function or wrong argument types: {sig} (see `stand repl` and `:help` for the functions)"
                )
            }
            other => other.to_string().lines().next().unwrap_or_default().to_string(),
        };
        let mut se = Self::at(&file, err.position(), message, sources);
        notes.reverse();
        se.notes = notes;
        se
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => writeln!(f, " --> {}:{l}:{c}", self.file)?,
            (Some(l), None) => writeln!(f, " --> {}:{l}", self.file)?,
            _ => writeln!(f, " --> {}", self.file)?,
        }
        if let (Some(l), Some(src)) = (self.line, &self.source_line) {
            let w = l.to_string().len();
            writeln!(f, "{:w$} |", "")?;
            writeln!(f, "{l} | {src}")?;
            let col = self.column.unwrap_or(1).max(1);
            writeln!(f, "{:w$} | {}^", "", " ".repeat(col as usize - 1))?;
        }
        for n in &self.notes {
            writeln!(f, "  = note: {n}")?;
        }
        Ok(())
    }
}
