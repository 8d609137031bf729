//! Error messages for people: an error and its causes in one line, each cause once.
//!
//! Errors here often say their cause in their own text ("cannot read (No such file or
//! directory)") and also expose it as `source()`; printing the whole chain would repeat it.

/// `error` followed by those of its causes whose text it has not said yet, joined by ": ".
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = current.source();
    }
    message
}
