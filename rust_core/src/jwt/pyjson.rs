//! Python values ⇄ JSON: the claims dict `TokenSigner.sign` takes is written as JSON here, and
//! verified claims become a dict again (no Python API of its own: responses use msgspec, which
//! measured faster than a Rust codec; benchmarks/README.md).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::json::{Json, Members};
use super::write::{write_f64, write_i64, write_str, write_u64};
use crate::errors::{CoreError, CoreResult};

/// Maximum container nesting the encoder accepts (also stops reference cycles).
pub const MAX_DEPTH: usize = 64;

/// Appends the JSON form of a Python value (str, int, float, bool, None, dict, list, tuple).
pub fn write_py(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> CoreResult<()> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        write_str(out, py_str(s)?);
    } else if let Ok(d) = obj.cast::<PyDict>() {
        write_dict(out, d, depth)?;
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if let Ok(i) = obj.cast::<PyInt>() {
        write_py_int(out, i)?;
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        write_f64(out, f.value());
    } else if let Ok(l) = obj.cast::<PyList>() {
        check_depth(depth)?;
        out.push(b'[');
        for (n, item) in l.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_py(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        check_depth(depth)?;
        out.push(b'[');
        for (n, item) in t.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_py(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(s) = obj.cast::<PyString>() {
        write_str(out, py_str(s)?);
    } else {
        let name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        return Err(CoreError::Unsupported(format!(
            "Encoding objects of type {name} is unsupported"
        )));
    }
    Ok(())
}

fn check_depth(depth: usize) -> CoreResult<()> {
    if depth >= MAX_DEPTH {
        return Err(CoreError::Encode(format!(
            "maximum nesting depth {MAX_DEPTH} exceeded"
        )));
    }
    Ok(())
}

fn py_str<'a>(s: &'a Bound<'_, PyString>) -> CoreResult<&'a str> {
    s.to_str()
        .map_err(|_| CoreError::Encode("str is not valid UTF-8 (lone surrogate)".to_owned()))
}

fn write_py_int(out: &mut Vec<u8>, i: &Bound<'_, PyInt>) -> CoreResult<()> {
    if let Ok(v) = i.extract::<i64>() {
        write_i64(out, v);
    } else if let Ok(v) = i.extract::<u64>() {
        write_u64(out, v);
    } else {
        return Err(CoreError::Encode("Integer value out of range".to_owned()));
    }
    Ok(())
}

/// Appends a dict with string keys as a JSON object.
pub fn write_dict(out: &mut Vec<u8>, d: &Bound<'_, PyDict>, depth: usize) -> CoreResult<()> {
    check_depth(depth)?;
    out.push(b'{');
    for (n, (k, v)) in d.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let key = k
            .cast::<PyString>()
            .map_err(|_| CoreError::Unsupported("Only dicts with str keys are supported".into()))?;
        write_str(out, py_str(key)?);
        out.push(b':');
        write_py(out, &v, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// A parsed JSON value as the Python object `json.loads` would give.
fn json_to_py<'py>(py: Python<'py>, v: &Json<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Int(i) => i.into_pyobject(py)?.into_any(),
        Json::UInt(u) => u.into_pyobject(py)?.into_any(),
        Json::Float(f) => f.into_pyobject(py)?.into_any(),
        Json::Str(s) => PyString::new(py, s).into_any(),
        Json::Arr(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Json::Obj(members) => members_to_py(py, members)?.into_any(),
    })
}

/// A JSON object as a dict, members in document order.
pub fn members_to_py<'py>(py: Python<'py>, members: &Members<'_>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in members {
        dict.set_item(PyString::new(py, k), json_to_py(py, v)?)?;
    }
    Ok(dict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_values_encode_like_msgspec() -> PyResult<()> {
        Python::initialize();
        Python::attach(|py| {
            let value = py.eval(
                c"{'a': [1, True, None, 1.5, 'x\\n'], 'b': {'c': (2**64 - 1, -2**63)}, 'd': float('nan')}",
                None,
                None,
            )?;
            let mut out = Vec::new();
            write_py(&mut out, &value, 0)?;
            assert_eq!(
                String::from_utf8_lossy(&out),
                r#"{"a":[1,true,null,1.5,"x\n"],"b":{"c":[18446744073709551615,-9223372036854775808]},"d":null}"#
            );
            let too_big = py.eval(c"{'n': 2**64}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &too_big, 0),
                Err(CoreError::Encode(_))
            ));
            let odd = py.eval(c"{'s': {1, 2}}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &odd, 0),
                Err(CoreError::Unsupported(_))
            ));
            let int_key = py.eval(c"{1: 2}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &int_key, 0),
                Err(CoreError::Unsupported(_))
            ));
            Ok(())
        })
    }
}
