//! The subset of Python's pickle that `torch.save` writes for tensors (protocols 2–4): enough to
//! rebuild tensors from their storages, in both the zip format (torch ≥ 1.6) and the legacy one.

use crate::{EngineError, Result};

/// A torch storage reference inside a pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// `FloatStorage`, `LongStorage`, ...
    pub class: String,
    pub key: String,
    pub numel: i64,
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// Any other object: its constructor and arguments.
    Object(String, Vec<Value>),
    Mark,
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(format!("pickle: {}", msg.into()))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| bad("truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.b[self.at..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| bad("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).to_string();
        self.at += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: usize) -> Result<String> {
        Ok(String::from_utf8_lossy(self.take(n)?).to_string())
    }
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(*b as i64),
        other => Err(bad(format!("expected an integer, got {other:?}"))),
    }
}

fn ints(v: &Value) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(t) | Value::List(t) => t.iter().map(int).collect(),
        other => Err(bad(format!("expected a tuple of integers, got {other:?}"))),
    }
}

/// What a persistent id (a storage reference) turns into.
fn persistent(pid: Value) -> Result<Value> {
    let Value::Tuple(t) = pid else {
        return Err(bad("persistent id is not a tuple"));
    };
    match t.as_slice() {
        [Value::Str(tag), Value::Global(_, class), Value::Str(key), _location, numel, ..]
            if tag == "storage" =>
        {
            Ok(Value::Storage(StorageRef {
                class: class.clone(),
                key: key.clone(),
                numel: int(numel)?,
            }))
        }
        _ => Err(bad(format!("unknown persistent id {t:?}"))),
    }
}

fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Tuple(args) = args else {
        return Err(bad("REDUCE arguments are not a tuple"));
    };
    let Value::Global(module, name) = callable else {
        return Err(bad("REDUCE of something not a global"));
    };
    match (module.as_str(), name.as_str(), args.as_slice()) {
        (
            "torch._utils",
            "_rebuild_tensor_v2" | "_rebuild_tensor",
            [Value::Storage(s), off, size, stride, ..],
        ) => Ok(Value::Tensor(TensorRef {
            storage: s.clone(),
            offset: int(off)?,
            size: ints(size)?,
            stride: ints(stride)?,
        })),
        ("collections", "OrderedDict", _) => Ok(Value::Dict(vec![])),
        _ => Ok(Value::Object(format!("{module}.{name}"), args)),
    }
}

/// Runs one pickle from `bytes[*at..]`, leaving `*at` after its STOP.
pub fn load(bytes: &[u8], at: &mut usize) -> Result<Value> {
    let mut r = Reader { b: bytes, at: *at };
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: std::collections::HashMap<u32, Value> = std::collections::HashMap::new();
    let pop = |stack: &mut Vec<Value>| stack.pop().ok_or_else(|| bad("stack underflow"));
    let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>> {
        let m = stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| bad("no MARK"))?;
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items)
    };
    let top = |stack: &Vec<Value>| -> Result<Value> {
        stack.last().cloned().ok_or_else(|| bad("empty stack"))
    };
    loop {
        let op = r.u8()?;
        match op {
            0x80 => {
                r.u8()?;
            }
            0x95 => {
                r.take(8)?;
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(Value::Global(module, name));
            }
            b'q' => {
                let k = r.u8()? as u32;
                memo.insert(k, top(&stack)?);
            }
            b'r' => {
                let k = r.u32()?;
                memo.insert(k, top(&stack)?);
            }
            0x94 => {
                let k = memo.len() as u32;
                memo.insert(k, top(&stack)?);
            }
            b'h' => {
                let k = r.u8()? as u32;
                stack.push(memo.get(&k).cloned().ok_or_else(|| bad("unknown memo"))?);
            }
            b'j' => {
                let k = r.u32()?;
                stack.push(memo.get(&k).cloned().ok_or_else(|| bad("unknown memo"))?);
            }
            b'(' => stack.push(Value::Mark),
            b'X' => {
                let n = r.u32()? as usize;
                stack.push(Value::Str(r.string(n)?));
            }
            0x8c => {
                let n = r.u8()? as usize;
                stack.push(Value::Str(r.string(n)?));
            }
            b'B' => {
                let n = r.u32()? as usize;
                stack.push(Value::Bytes(r.take(n)?.to_vec()));
            }
            b'C' => {
                let n = r.u8()? as usize;
                stack.push(Value::Bytes(r.take(n)?.to_vec()));
            }
            b'K' => stack.push(Value::Int(r.u8()? as i64)),
            b'M' => stack.push(Value::Int(r.u16()? as i64)),
            b'J' => stack.push(Value::Int(r.u32()? as i32 as i64)),
            0x8a => {
                let n = r.u8()? as usize;
                let raw = r.take(n)?;
                if n > 8 {
                    // torch's magic number is a 10-byte long; keep its low bits.
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&raw[..8]);
                    stack.push(Value::Int(i64::from_le_bytes(b)));
                } else {
                    let mut b = [0u8; 8];
                    b[..n].copy_from_slice(raw);
                    if n > 0 && raw[n - 1] & 0x80 != 0 {
                        b[n..].fill(0xff);
                    }
                    stack.push(Value::Int(i64::from_le_bytes(b)));
                }
            }
            b'G' => {
                let raw: [u8; 8] = r.take(8)?.try_into().expect("8 bytes");
                stack.push(Value::Float(f64::from_be_bytes(raw)));
            }
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b')' => stack.push(Value::Tuple(vec![])),
            b']' => stack.push(Value::List(vec![])),
            b'}' => stack.push(Value::Dict(vec![])),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(bad("stack underflow"));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::List(l)) = stack.last_mut() {
                    l.extend(items);
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                if let Some(Value::Dict(d)) = stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(persistent(pid)?);
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(reduce(callable, args)?);
            }
            b'b' => {
                // BUILD: object state; tensors and dicts need none of it.
                pop(&mut stack)?;
            }
            b'.' => {
                *at = r.at;
                return pop(&mut stack);
            }
            other => return Err(bad(format!("unsupported opcode 0x{other:02x}"))),
        }
    }
}
