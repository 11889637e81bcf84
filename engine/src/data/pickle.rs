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
    /// LONG1's little-endian two's-complement integer (of a longer one, its low 64 bits).
    fn long1(&mut self) -> Result<i64> {
        let n = self.u8()? as usize;
        let raw = self.take(n)?;
        if n > 8 {
            // torch's magic number is a 10-byte long; keep its low bits.
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[..8]);
            Ok(i64::from_le_bytes(b))
        } else {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(raw);
            if n > 0 && raw[n - 1] & 0x80 != 0 {
                b[n..].fill(0xff);
            }
            Ok(i64::from_le_bytes(b))
        }
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

/// The unpickler's state: the input, the stack and the memo.
struct Unpickler<'a> {
    r: Reader<'a>,
    stack: Vec<Value>,
    memo: std::collections::HashMap<u32, Value>,
}

impl Unpickler<'_> {
    /// Pops the top of the stack.
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| bad("stack underflow"))
    }

    /// Pops the items above the topmost MARK, and the MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| bad("no MARK"))?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }

    /// A copy of the top of the stack.
    fn top(&self) -> Result<Value> {
        self.stack.last().cloned().ok_or_else(|| bad("empty stack"))
    }

    /// Memo entry `k`, pushed onto the stack.
    fn memo_get(&mut self, k: u32) -> Result<()> {
        let v = self
            .memo
            .get(&k)
            .cloned()
            .ok_or_else(|| bad("unknown memo"))?;
        self.stack.push(v);
        Ok(())
    }

    /// Protocol and frame headers, globals and the memo; false when `op` is none of them.
    fn memo_op(&mut self, op: u8) -> Result<bool> {
        match op {
            0x80 => {
                self.r.u8()?;
            }
            0x95 => {
                self.r.take(8)?;
            }
            b'c' => {
                let module = self.r.line()?;
                let name = self.r.line()?;
                self.stack.push(Value::Global(module, name));
            }
            b'q' => {
                let k = self.r.u8()? as u32;
                let v = self.top()?;
                self.memo.insert(k, v);
            }
            b'r' => {
                let k = self.r.u32()?;
                let v = self.top()?;
                self.memo.insert(k, v);
            }
            0x94 => {
                let k = self.memo.len() as u32;
                let v = self.top()?;
                self.memo.insert(k, v);
            }
            b'h' => {
                let k = self.r.u8()? as u32;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.r.u32()?;
                self.memo_get(k)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Strings, bytes, integers, floats, booleans and None; false when `op` is none of them.
    fn scalar_op(&mut self, op: u8) -> Result<bool> {
        let v = match op {
            b'X' => {
                let n = self.r.u32()? as usize;
                Value::Str(self.r.string(n)?)
            }
            0x8c => {
                let n = self.r.u8()? as usize;
                Value::Str(self.r.string(n)?)
            }
            b'B' => {
                let n = self.r.u32()? as usize;
                Value::Bytes(self.r.take(n)?.to_vec())
            }
            b'C' => {
                let n = self.r.u8()? as usize;
                Value::Bytes(self.r.take(n)?.to_vec())
            }
            b'K' => Value::Int(self.r.u8()? as i64),
            b'M' => Value::Int(self.r.u16()? as i64),
            b'J' => Value::Int(self.r.u32()? as i32 as i64),
            0x8a => Value::Int(self.r.long1()?),
            b'G' => {
                let raw: [u8; 8] = self.r.take(8)?.try_into().expect("8 bytes");
                Value::Float(f64::from_be_bytes(raw))
            }
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            _ => return Ok(false),
        };
        self.stack.push(v);
        Ok(true)
    }

    /// Tuples, lists and dicts: empty ones, ones from the stack, appends; false for anything else.
    fn container_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'(' => self.stack.push(Value::Mark),
            b')' => self.stack.push(Value::Tuple(vec![])),
            b']' => self.stack.push(Value::List(vec![])),
            b'}' => self.stack.push(Value::Dict(vec![])),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err(bad("stack underflow"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = self.pop()?;
                if let Some(Value::List(l)) = self.stack.last_mut() {
                    l.push(v);
                }
            }
            b'e' => {
                let items = self.pop_mark()?;
                if let Some(Value::List(l)) = self.stack.last_mut() {
                    l.extend(items);
                }
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                if let Some(Value::Dict(d)) = self.stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                if let Some(Value::Dict(d)) = self.stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Persistent ids (storages), REDUCE (tensors, other objects) and BUILD; false for anything else.
    fn object_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'Q' => {
                let pid = self.pop()?;
                self.stack.push(persistent(pid)?);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(reduce(callable, args)?);
            }
            b'b' => {
                // BUILD: object state; tensors and dicts need none of it.
                self.pop()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Runs one pickle from `bytes[*at..]`, leaving `*at` after its STOP.
pub fn load(bytes: &[u8], at: &mut usize) -> Result<Value> {
    let mut p = Unpickler {
        r: Reader { b: bytes, at: *at },
        stack: Vec::new(),
        memo: std::collections::HashMap::new(),
    };
    loop {
        let op = p.r.u8()?;
        if op == b'.' {
            *at = p.r.at;
            return p.pop();
        }
        // Each opcode belongs to exactly one family; the others leave the state untouched.
        let known = p.memo_op(op)? || p.scalar_op(op)? || p.container_op(op)? || p.object_op(op)?;
        if !known {
            return Err(bad(format!("unsupported opcode 0x{op:02x}")));
        }
    }
}
