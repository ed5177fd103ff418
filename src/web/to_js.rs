//! The one writer from the core's `Serialize` types to JavaScript values: structs become plain
//! objects (a field a type skips is absent, never `undefined`), sequences arrays, numbers
//! numbers, strings strings, `None` and `()` `undefined`.
//!
//! A `serde::Serializer` of our own rather than `serde-wasm-bindgen`'s: the core's types need
//! only these shapes, and `serde-wasm-bindgen` (0.6.5) weighed 6.2 KB more in the optimised
//! wasm (2.8 KB gzipped), mostly its cache of interned field names (a hash map), for objects
//! made a few times per call (README, section "Size"). Maps, tuples, byte strings and enum
//! variants with data are refused (no core type has them): a refused value is written as `undefined`
//! rather than failing the call. It must never decide anything.

use js_sys::{Array, Object};
use serde::ser::{self, Impossible, Serialize};
use std::fmt;
use wasm_bindgen::JsValue;

/// `value` as a JavaScript value.
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    value.serialize(Writer(None)).unwrap_or(JsValue::UNDEFINED)
}

/// The fields of `value` (a struct) set on `object`, an object made elsewhere (an `Error`).
pub(crate) fn write_fields<T: Serialize + ?Sized>(object: &Object, value: &T) {
    let _ = value.serialize(Writer(Some(object.clone())));
}

/// A shape the writer does not write (maps, bytes, enum variants with data).
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a plain data shape")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

/// Writes one value; a struct's fields go on the object it holds, if any (else on a new one).
struct Writer(Option<Object>);

/// An array being filled.
pub(crate) struct Items(Array);

/// An object being filled.
pub(crate) struct Fields(Object);

type Refused = Impossible<JsValue, Unsupported>;

/// Every number type as the nearest JavaScript number (a 64-bit integer past 2^53 has no
/// exact one).
macro_rules! numbers {
    ($($method:ident: $type:ty),*) => {
        $(fn $method(self, v: $type) -> Result<JsValue, Unsupported> {
            Ok(JsValue::from_f64(v as f64))
        })*
    };
}

impl ser::Serializer for Writer {
    type Ok = JsValue;
    type Error = Unsupported;
    type SerializeSeq = Items;
    type SerializeTuple = Refused;
    type SerializeTupleStruct = Refused;
    type SerializeTupleVariant = Refused;
    type SerializeMap = Refused;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Refused;

    fn serialize_bool(self, v: bool) -> Result<JsValue, Unsupported> {
        Ok(JsValue::from_bool(v))
    }
    numbers!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64
    );
    fn serialize_char(self, v: char) -> Result<JsValue, Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<JsValue, Unsupported> {
        Ok(JsValue::from_str(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<JsValue, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<JsValue, Unsupported> {
        Ok(JsValue::UNDEFINED)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<JsValue, Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<JsValue, Unsupported> {
        Ok(JsValue::UNDEFINED)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<JsValue, Unsupported> {
        Ok(JsValue::UNDEFINED)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<JsValue, Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<JsValue, Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<JsValue, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Items, Unsupported> {
        Ok(Items(Array::new()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Refused, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Refused, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Refused, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Refused, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, Unsupported> {
        Ok(Fields::new(self.0))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Refused, Unsupported> {
        Err(Unsupported)
    }
}

impl ser::SerializeSeq for Items {
    type Ok = JsValue;
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.0.push(&value.serialize(Writer(None))?);
        Ok(())
    }
    fn end(self) -> Result<JsValue, Unsupported> {
        Ok(self.0.into())
    }
}

impl Fields {
    #[inline(never)]
    fn new(into: Option<Object>) -> Fields {
        Fields(into.unwrap_or_default())
    }

    #[inline(never)]
    fn set(&self, key: &'static str, value: &JsValue) {
        // Setting a data property on a fresh plain object cannot fail.
        crate::web::objects::set(&self.0, key, value);
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = JsValue;
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        // Never fails, so that the derives' checks after each field fold away.
        let value = value.serialize(Writer(None)).unwrap_or(JsValue::UNDEFINED);
        self.set(key, &value);
        Ok(())
    }
    fn end(self) -> Result<JsValue, Unsupported> {
        Ok(self.0.into())
    }
}
