//! A restricted reader of Python pickles: enough of protocol 2 for the files numpy, scipy and
//! Planetoid write (`ind.<name>.{x,tx,allx,y,ty,ally,graph}`), and nothing that runs code.
//!
//! A real unpickler imports and calls whatever the file names. This one knows six names and builds
//! plain values for them: `numpy.core.multiarray._reconstruct` with `numpy.ndarray` (an array),
//! `numpy.dtype` (a number type), `scipy.sparse.csr.csr_matrix` (a sparse matrix's fields),
//! `collections.defaultdict` (a dictionary) and `__builtin__.list` (only as a defaultdict's
//! default). Any other name, or any opcode outside the set below, is refused with the opcode or
//! name and its byte offset.
//!
//! Sizes come from the file: every length is checked against the bytes that remain before
//! anything is allocated, an array's shape must match the bytes it holds (with overflow checked),
//! and values nest at most [`MAX_DEPTH`] deep, so a hostile file cannot allocate more than its own
//! size or overflow the stack.

use std::collections::HashMap;
use std::fmt;

/// How deeply containers may nest (Planetoid's files nest three deep).
pub const MAX_DEPTH: u32 = 64;

/// A value built from a pickle.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Python 2 `str` or a Python 3 `bytes`.
    Bytes(Vec<u8>),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Array(Array),
    DType(DType),
    /// A `scipy.sparse` CSR matrix: its attribute dictionary (`_shape`, `indptr`, `indices`, `data`).
    Csr(Vec<(Value, Value)>),
    /// A `collections.defaultdict`'s items.
    DefaultDict(Vec<(Value, Value)>),
    /// One of the names this reader knows, before it is called.
    Global(Global),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Bytes(_) => "a byte string",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Array(_) => "a numpy array",
            Value::DType(_) => "a numpy dtype",
            Value::Csr(_) => "a CSR matrix",
            Value::DefaultDict(_) => "a defaultdict",
            Value::Global(_) => "a global name",
        }
    }

    /// The value stored under the string key `key` of a dictionary-like value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let items = match self {
            Value::Dict(items) | Value::Csr(items) | Value::DefaultDict(items) => items,
            _ => return None,
        };
        items.iter().find_map(|(k, v)| match k {
            Value::Str(s) if s == key => Some(v),
            Value::Bytes(b) if b == key.as_bytes() => Some(v),
            _ => None,
        })
    }
}

/// The names a pickle may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Reconstruct,
    NdArray,
    DType,
    CsrMatrix,
    DefaultDict,
    List,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Self> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Self::Reconstruct,
            ("numpy", "ndarray") => Self::NdArray,
            ("numpy", "dtype") => Self::DType,
            ("scipy.sparse.csr" | "scipy.sparse._csr" | "scipy.sparse", "csr_matrix") => Self::CsrMatrix,
            ("collections", "defaultdict") => Self::DefaultDict,
            ("__builtin__" | "builtins", "list") => Self::List,
            _ => return None,
        })
    }
}

/// A numpy number type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DType {
    /// `b'f'` float, `b'i'` signed, `b'u'` unsigned, `b'b'` bool.
    pub kind: u8,
    pub size: usize,
    pub big_endian: bool,
}

/// A numpy array: its type, shape and raw bytes (C order unless `fortran`).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub fortran: bool,
    pub data: Vec<u8>,
}

impl Array {
    /// The elements as f64, in storage order.
    pub fn to_f64(&self) -> Result<Vec<f64>, String> {
        let d = self.dtype;
        let chunks = self.data.chunks_exact(d.size);
        let read = |bytes: &[u8]| -> Option<f64> {
            let mut b = [0u8; 8];
            let n = bytes.len();
            b[..n].copy_from_slice(bytes);
            if d.big_endian {
                b[..n].reverse();
            }
            #[allow(clippy::cast_precision_loss)]
            Some(match (d.kind, n) {
                (b'f', 4) => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                (b'f', 8) => f64::from_le_bytes(b),
                (b'i', 1) => f64::from(i8::from_le_bytes([b[0]])),
                (b'i', 2) => f64::from(i16::from_le_bytes([b[0], b[1]])),
                (b'i', 4) => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                (b'i', 8) => i64::from_le_bytes(b) as f64,
                (b'u' | b'b', 1) => f64::from(b[0]),
                (b'u', 2) => f64::from(u16::from_le_bytes([b[0], b[1]])),
                (b'u', 4) => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                (b'u', 8) => u64::from_le_bytes(b) as f64,
                _ => return None,
            })
        };
        chunks.map(|c| read(c).ok_or_else(|| format!("unsupported numpy type {}{}", d.kind as char, d.size))).collect()
    }

    /// The elements as i64 (integer arrays only), in storage order.
    pub fn to_i64(&self) -> Result<Vec<i64>, String> {
        if !matches!(self.dtype.kind, b'i' | b'u' | b'b') {
            return Err(format!("expected integers, found numpy type {}{}", self.dtype.kind as char, self.dtype.size));
        }
        #[allow(clippy::cast_possible_truncation)]
        Ok(self.to_f64()?.into_iter().map(|v| v as i64).collect())
    }
}

/// Why a pickle was refused: what, and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for PickleError {}

#[derive(Clone, Debug)]
struct Item {
    value: Value,
    depth: u32,
}

enum Slot {
    Mark,
    Item(Item),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where the opcode being run starts.
    op_at: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.op_at, message: message.into() })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.bytes.len() - self.pos {
            return Err(PickleError {
                offset: self.pos,
                message: format!(
                    "the file ends early: {n} bytes announced, {} left (a truncated or damaged file)",
                    self.bytes.len() - self.pos
                ),
            });
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.bytes[self.pos..];
        let Some(end) = rest.iter().take(256).position(|&b| b == b'\n') else {
            if rest.len() < 256 {
                return self.fail("the file ends inside a name (a truncated or damaged file)");
            }
            return self.fail("a name without its end of line");
        };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| self.fail("a name that is not text"))
    }
}

/// Reads one pickled value from `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut r = Reader { bytes, pos: 0, op_at: 0 };
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: HashMap<u32, Item> = HashMap::new();
    loop {
        r.op_at = r.pos;
        if r.pos >= bytes.len() {
            return r.fail("the file ends before its STOP opcode (a truncated file)");
        }
        let op = r.u8()?;
        match op {
            0x80 => {
                let protocol = r.u8()?;
                if protocol > 2 {
                    return r.fail(format!(
                        "pickle protocol {protocol}; this reader takes protocol 2 and older (Planetoid's files)"
                    ));
                }
            }
            b'.' => {
                return match stack.pop() {
                    Some(Slot::Item(item)) => Ok(item.value),
                    _ => r.fail("STOP with nothing to return"),
                };
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                match Global::resolve(module, name) {
                    Some(global) => push(&mut stack, Value::Global(global), 0),
                    None => {
                        return r.fail(format!(
                            "refused global `{module}.{name}`: only numpy arrays, scipy CSR matrices and \
                             defaultdicts of lists are read, and nothing named in a file is ever run"
                        ));
                    }
                }
            }
            b'(' => stack.push(Slot::Mark),
            b')' => push(&mut stack, Value::Tuple(Vec::new()), 1),
            b']' => push(&mut stack, Value::List(Vec::new()), 1),
            b'}' => push(&mut stack, Value::Dict(Vec::new()), 1),
            b'N' => push(&mut stack, Value::None, 0),
            0x88 => push(&mut stack, Value::Bool(true), 0),
            0x89 => push(&mut stack, Value::Bool(false), 0),
            b'K' => {
                let v = r.u8()?;
                push(&mut stack, Value::Int(i64::from(v)), 0);
            }
            b'M' => {
                let v = r.u16()?;
                push(&mut stack, Value::Int(i64::from(v)), 0);
            }
            b'J' => {
                let v = r.u32()?;
                push(&mut stack, Value::Int(i64::from(v.cast_signed())), 0);
            }
            0x8a => {
                let n = usize::from(r.u8()?);
                if n > 8 {
                    return r.fail(format!("an integer of {n} bytes (at most 8 are read)"));
                }
                let b = r.take(n)?;
                let mut buf = if b.last().is_some_and(|&last| last & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                buf[..n].copy_from_slice(b);
                push(&mut stack, Value::Int(i64::from_le_bytes(buf)), 0);
            }
            b'G' => {
                let b = r.take(8)?;
                let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                push(&mut stack, Value::Float(v), 0);
            }
            b'U' | b'C' => {
                let n = usize::from(r.u8()?);
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b), 0);
            }
            b'T' | b'B' => {
                let n = r.u32()? as usize;
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b), 0);
            }
            b'X' => {
                let n = r.u32()? as usize;
                let b = r.take(n)?;
                let Ok(s) = std::str::from_utf8(b) else {
                    return r.fail("a unicode string that is not UTF-8");
                };
                push(&mut stack, Value::Str(s.to_owned()), 0);
            }
            0x8c => {
                let n = usize::from(r.u8()?);
                let b = r.take(n)?;
                let Ok(s) = std::str::from_utf8(b) else {
                    return r.fail("a unicode string that is not UTF-8");
                };
                push(&mut stack, Value::Str(s.to_owned()), 0);
            }
            b'q' | b'r' => {
                let key = if op == b'q' { u32::from(r.u8()?) } else { r.u32()? };
                let Some(Slot::Item(top)) = stack.last() else {
                    return r.fail("memo PUT with no value on the stack");
                };
                memo.insert(key, top.clone());
            }
            b'h' | b'j' => {
                let key = if op == b'h' { u32::from(r.u8()?) } else { r.u32()? };
                let Some(item) = memo.get(&key) else {
                    return r.fail(format!("memo GET of {key}, which was never put"));
                };
                stack.push(Slot::Item(item.clone()));
            }
            b't' | b'l' => {
                let items = pop_to_mark(&mut stack, &r)?;
                let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
                let values = items.into_iter().map(|i| i.value).collect();
                let value = if op == b't' { Value::Tuple(values) } else { Value::List(values) };
                push_checked(&mut stack, value, depth, &r)?;
            }
            b'd' => {
                let items = pop_to_mark(&mut stack, &r)?;
                let (pairs, depth) = pairs(items, &r)?;
                push_checked(&mut stack, Value::Dict(pairs), depth + 1, &r)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let items = pop_n(&mut stack, n, &r)?;
                let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
                push_checked(&mut stack, Value::Tuple(items.into_iter().map(|i| i.value).collect()), depth, &r)?;
            }
            b'a' => {
                let item = pop_n(&mut stack, 1, &r)?.remove(0);
                extend_list(&mut stack, vec![item], &r)?;
            }
            b'e' => {
                let items = pop_to_mark(&mut stack, &r)?;
                extend_list(&mut stack, items, &r)?;
            }
            b's' => {
                let items = pop_n(&mut stack, 2, &r)?;
                extend_dict(&mut stack, items, &r)?;
            }
            b'u' => {
                let items = pop_to_mark(&mut stack, &r)?;
                extend_dict(&mut stack, items, &r)?;
            }
            b'R' => {
                let [callable, args] = pop_two(&mut stack, &r)?;
                let value = reduce(callable.value, args.value, &r)?;
                push(&mut stack, value, 1);
            }
            0x81 => {
                let [class, args] = pop_two(&mut stack, &r)?;
                match (class.value, args.value) {
                    (Value::Global(Global::CsrMatrix), Value::Tuple(a)) if a.is_empty() => {
                        push(&mut stack, Value::Csr(Vec::new()), 1);
                    }
                    (class, _) => {
                        return r
                            .fail(format!("NEWOBJ of {}; only csr_matrix objects are built this way", class.kind()));
                    }
                }
            }
            b'b' => {
                let [object, state] = pop_two(&mut stack, &r)?;
                let depth = object.depth.max(state.depth + 1);
                let value = build(object.value, state.value, &r)?;
                push_checked(&mut stack, value, depth, &r)?;
            }
            b'0' => {
                if stack.pop().is_none() {
                    return r.fail("POP on an empty stack");
                }
            }
            other => {
                return r.fail(format!(
                    "opcode {other:#04x} ({}) is not read here: Planetoid's files use protocol 2's data opcodes only",
                    if other.is_ascii_graphic() { format!("'{}'", other as char) } else { "binary".into() }
                ));
            }
        }
    }
}

fn push(stack: &mut Vec<Slot>, value: Value, depth: u32) {
    stack.push(Slot::Item(Item { value, depth }));
}

fn push_checked(stack: &mut Vec<Slot>, value: Value, depth: u32, r: &Reader<'_>) -> Result<(), PickleError> {
    if depth > MAX_DEPTH {
        return r.fail(format!("values nest more than {MAX_DEPTH} deep"));
    }
    push(stack, value, depth);
    Ok(())
}

fn pop_to_mark(stack: &mut Vec<Slot>, r: &Reader<'_>) -> Result<Vec<Item>, PickleError> {
    let Some(mark) = stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
        return r.fail("an opcode that needs a MARK found none");
    };
    let items = stack
        .drain(mark + 1..)
        .map(|s| match s {
            Slot::Item(item) => item,
            Slot::Mark => unreachable!("the last mark is at `mark`"),
        })
        .collect();
    stack.pop();
    Ok(items)
}

fn pop_n(stack: &mut Vec<Slot>, n: usize, r: &Reader<'_>) -> Result<Vec<Item>, PickleError> {
    if stack.len() < n || stack[stack.len() - n..].iter().any(|s| matches!(s, Slot::Mark)) {
        return r.fail(format!("an opcode needs {n} values on the stack"));
    }
    Ok(stack
        .drain(stack.len() - n..)
        .map(|s| match s {
            Slot::Item(item) => item,
            Slot::Mark => unreachable!("checked above"),
        })
        .collect())
}

fn pop_two(stack: &mut Vec<Slot>, r: &Reader<'_>) -> Result<[Item; 2], PickleError> {
    let items = pop_n(stack, 2, r)?;
    <[Item; 2]>::try_from(items).or_else(|_| r.fail("an opcode needs 2 values on the stack"))
}

fn pairs(items: Vec<Item>, r: &Reader<'_>) -> Result<(Vec<(Value, Value)>, u32), PickleError> {
    if !items.len().is_multiple_of(2) {
        return r.fail("a dictionary with an odd number of keys and values");
    }
    let depth = items.iter().map(|i| i.depth).max().unwrap_or(0);
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        out.push((k.value, v.value));
    }
    Ok((out, depth))
}

fn top_item<'s>(stack: &'s mut [Slot], r: &Reader<'_>) -> Result<&'s mut Item, PickleError> {
    match stack.last_mut() {
        Some(Slot::Item(item)) => Ok(item),
        _ => r.fail("an opcode that adds to a container found none"),
    }
}

fn extend_list(stack: &mut [Slot], items: Vec<Item>, r: &Reader<'_>) -> Result<(), PickleError> {
    let depth = items.iter().map(|i| i.depth + 1).max().unwrap_or(0);
    let target = top_item(stack, r)?;
    let Value::List(list) = &mut target.value else {
        return r.fail(format!("APPEND to {}", target.value.kind()));
    };
    list.extend(items.into_iter().map(|i| i.value));
    target.depth = target.depth.max(depth);
    if target.depth > MAX_DEPTH {
        return r.fail(format!("values nest more than {MAX_DEPTH} deep"));
    }
    Ok(())
}

fn extend_dict(stack: &mut [Slot], items: Vec<Item>, r: &Reader<'_>) -> Result<(), PickleError> {
    let (new, depth) = pairs(items, r)?;
    let target = top_item(stack, r)?;
    let (Value::Dict(dict) | Value::DefaultDict(dict)) = &mut target.value else {
        return r.fail(format!("SETITEM on {}", target.value.kind()));
    };
    dict.extend(new);
    target.depth = target.depth.max(depth + 1);
    if target.depth > MAX_DEPTH {
        return r.fail(format!("values nest more than {MAX_DEPTH} deep"));
    }
    Ok(())
}

/// A call of one of the known names.
fn reduce(callable: Value, args: Value, r: &Reader<'_>) -> Result<Value, PickleError> {
    let Value::Tuple(args) = args else {
        return r.fail("REDUCE without an argument tuple");
    };
    match (callable, args.as_slice()) {
        // `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD fills.
        (Value::Global(Global::Reconstruct), [Value::Global(Global::NdArray), _, _]) => Ok(Value::Array(Array {
            dtype: DType { kind: b'u', size: 1, big_endian: false },
            shape: vec![0],
            fortran: false,
            data: Vec::new(),
        })),
        // `dtype('f4', 0, 1)`
        (Value::Global(Global::DType), [Value::Bytes(_) | Value::Str(_), ..]) => {
            let code = match &args[0] {
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Str(s) => s.clone(),
                _ => unreachable!("matched above"),
            };
            parse_dtype(&code)
                .map(Value::DType)
                .ok_or(())
                .or_else(|()| r.fail(format!("numpy type `{code}` (only bool, integer and float numbers are read)")))
        }
        // `defaultdict(list)`
        (Value::Global(Global::DefaultDict), [Value::Global(Global::List)] | []) => Ok(Value::DefaultDict(Vec::new())),
        (callable, _) => {
            let what = match &callable {
                Value::Global(g) => format!("{g:?}"),
                v => v.kind().to_owned(),
            };
            r.fail(format!("a call of {what} with these arguments is not one numpy, scipy or Planetoid files make"))
        }
    }
}

fn parse_dtype(code: &str) -> Option<DType> {
    let (kind, size) = code.split_at(1);
    let kind = match kind {
        "f" | "i" | "u" | "b" => kind.as_bytes()[0],
        _ => return None,
    };
    let size: usize = size.parse().ok()?;
    let valid = match kind {
        b'f' => matches!(size, 4 | 8),
        b'b' => size == 1,
        _ => matches!(size, 1 | 2 | 4 | 8),
    };
    valid.then_some(DType { kind, size, big_endian: false })
}

/// BUILD: an object's state set on it.
fn build(object: Value, state: Value, r: &Reader<'_>) -> Result<Value, PickleError> {
    match (object, state) {
        (Value::Array(_), Value::Tuple(s)) => {
            // (version, shape, dtype, is_fortran, raw bytes)
            let Ok([_, Value::Tuple(shape), Value::DType(dtype), Value::Bool(fortran), Value::Bytes(data)]) =
                <[Value; 5]>::try_from(s)
            else {
                return r.fail("an array state that is not (version, shape, dtype, fortran, bytes)");
            };
            let mut dims = Vec::with_capacity(shape.len());
            let mut count: usize = 1;
            for d in &shape {
                let Value::Int(d) = d else {
                    return r.fail("an array shape that is not made of integers");
                };
                let Ok(d) = usize::try_from(*d) else {
                    return r.fail(format!("a negative array dimension ({d})"));
                };
                count = match count.checked_mul(d) {
                    Some(c) => c,
                    None => return r.fail("an array shape whose size overflows"),
                };
                dims.push(d);
            }
            if count.checked_mul(dtype.size) != Some(data.len()) {
                return r.fail(format!(
                    "an array of shape {dims:?} ({count} values of {} bytes) holding {} bytes",
                    dtype.size,
                    data.len()
                ));
            }
            Ok(Value::Array(Array { dtype, shape: dims, fortran, data }))
        }
        (Value::DType(mut dtype), Value::Tuple(s)) => {
            // (version, byte order, …)
            match s.get(1) {
                Some(Value::Bytes(b)) if b == b">" => dtype.big_endian = true,
                Some(Value::Str(o)) if o == ">" => dtype.big_endian = true,
                Some(Value::Bytes(_) | Value::Str(_)) => {}
                _ => return r.fail("a dtype state without its byte order"),
            }
            Ok(Value::DType(dtype))
        }
        (Value::Csr(mut fields), Value::Dict(state)) => {
            fields.extend(state);
            Ok(Value::Csr(fields))
        }
        (object, state) => r.fail(format!("setting {} on {}", state.kind(), object.kind())),
    }
}
