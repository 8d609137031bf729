//! Triangle meshes from OBJ, PLY (ASCII and binary) and OFF files, read strictly: every refusal
//! names the file, the line or element, and what to do.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use glam::Vec3;

/// An indexed triangle mesh. `colors`, when present, holds one linear RGB colour in [0, 1] per
/// position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub positions: Vec<Vec3>,
    pub triangles: Vec<[u32; 3]>,
    pub colors: Option<Vec<Vec3>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("{path}: unknown mesh format (extension {extension:?}). Pick an .obj, .ply or .off file.")]
    UnknownExtension { path: PathBuf, extension: String },
    #[error("{path}: file not found. Check the path, or pick the file with Open mesh….")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot read the file ({source}). Check that it exists and is readable.")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {reason}")]
    Line { path: PathBuf, line: usize, reason: String },
    #[error("{path}, {element} {index}: {reason}")]
    Element { path: PathBuf, element: String, index: usize, reason: String },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Loads a mesh; the format follows the extension (`.obj`, `.ply`, `.off`, case-insensitive).
pub fn load_mesh(path: &Path) -> Result<Mesh, MeshError> {
    // Check the extension first so that a wrong file type is refused before reading it.
    format_of(path)?;
    let bytes = crate::files::read_capped(path, crate::files::MESH).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            MeshError::NotFound { path: path.to_owned() }
        } else {
            MeshError::Read { path: path.to_owned(), source }
        }
    })?;
    read_mesh(&bytes, path)
}

/// Parses mesh file contents; `path` picks the format by its extension and names the file in errors.
pub fn read_mesh(bytes: &[u8], path: &Path) -> Result<Mesh, MeshError> {
    let mesh = match format_of(path)? {
        Format::Obj => parse_obj(&String::from_utf8_lossy(bytes), path)?,
        Format::Ply => parse_ply(bytes, path)?,
        Format::Off => parse_off(&String::from_utf8_lossy(bytes), path)?,
    };
    if mesh.triangles.is_empty() {
        return Err(MeshError::File {
            path: path.to_owned(),
            reason: "the file holds no faces, so there is no surface to render. Export the surface as a triangle \
                     or polygon mesh (not a point cloud or lines)."
                .into(),
        });
    }
    let corner = |i: u32| mesh.positions.get(i as usize).copied().filter(|p| p.is_finite());
    let has_area = mesh.triangles.iter().any(|&[a, b, c]| match (corner(a), corner(b), corner(c)) {
        (Some(a), Some(b), Some(c)) => (b - a).cross(c - a).length_squared() > 0.0,
        _ => false,
    });
    if !has_area {
        return Err(MeshError::File {
            path: path.to_owned(),
            reason: format!(
                "none of its {} faces has an area (their corners coincide, lie on one line, or are missing), so \
                 there is no surface to render. Check the vertex coordinates: a failed export can put every \
                 vertex at one point.",
                mesh.triangles.len()
            ),
        });
    }
    Ok(mesh)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Obj,
    Ply,
    Off,
}

fn format_of(path: &Path) -> Result<Format, MeshError> {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "obj" => Ok(Format::Obj),
        "ply" => Ok(Format::Ply),
        "off" => Ok(Format::Off),
        _ => Err(MeshError::UnknownExtension { path: path.to_owned(), extension }),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn parse_coordinate(token: &str) -> Result<f32, String> {
    let value: f32 = token.parse().map_err(|_| format!("{token:?} is not a number. Fix or remove this line."))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("coordinate {token:?} is not finite. Fix the exporter or remove this vertex."))
    }
}

/// Appends the fan triangulation `(first, k, k+1)` of a polygon.
fn fan(polygon: &[u32], triangles: &mut Vec<[u32; 3]>) {
    if let Some((&first, rest)) = polygon.split_first() {
        triangles.extend(rest.windows(2).map(|pair| [first, pair[0], pair[1]]));
    }
}

/// Colours written as 0–255 integers are rescaled to [0, 1]; then everything is clamped.
fn normalized_colors(mut colors: Vec<Vec3>) -> Vec<Vec3> {
    let max = colors.iter().map(|c| c.max_element()).fold(0.0_f32, f32::max);
    let full_scale = if max > 1.0 { 255.0 } else { 1.0 };
    for c in &mut colors {
        *c = (*c / full_scale).clamp(Vec3::ZERO, Vec3::ONE);
    }
    colors
}

fn line_error(path: &Path, line: usize, reason: impl Into<String>) -> MeshError {
    MeshError::Line { path: path.to_owned(), line, reason: reason.into() }
}

fn file_error(path: &Path, reason: impl Into<String>) -> MeshError {
    MeshError::File { path: path.to_owned(), reason: reason.into() }
}

/// `text` without a `#` comment.
fn strip_comment(text: &str) -> &str {
    text.split_once('#').map_or(text, |(before, _)| before)
}

// ---------------------------------------------------------------------------------------------
// OBJ

fn parse_obj(text: &str, path: &Path) -> Result<Mesh, MeshError> {
    let mut positions: Vec<Vec3> = Vec::new();
    let mut colors: Vec<Vec3> = Vec::new();
    let mut all_colored = true;
    let mut triangles = Vec::new();
    // Positive indices past the vertices read so far are legal if the vertex comes later.
    let mut forward_references: Vec<(u32, usize)> = Vec::new();
    let mut polygon: Vec<u32> = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        let mut tokens = strip_comment(raw).split_whitespace();
        match tokens.next() {
            Some("v") => {
                let values = tokens
                    .map(parse_coordinate)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|r| line_error(path, line, r))?;
                let (position, color) = match values.as_slice() {
                    [x, y, z] | [x, y, z, _] => (Vec3::new(*x, *y, *z), None),
                    [x, y, z, r, g, b] | [x, y, z, r, g, b, _] => (Vec3::new(*x, *y, *z), Some(Vec3::new(*r, *g, *b))),
                    _ => {
                        return Err(line_error(
                            path,
                            line,
                            format!(
                                "a vertex reads `v x y z` or `v x y z r g b`, but this one has {} numbers.",
                                values.len()
                            ),
                        ));
                    }
                };
                positions.push(position);
                match color {
                    Some(c) if all_colored => colors.push(c),
                    Some(_) => {}
                    None => all_colored = false,
                }
            }
            Some("f") => {
                polygon.clear();
                for token in tokens {
                    let index = obj_index(token, positions.len()).map_err(|r| line_error(path, line, r))?;
                    if index as usize >= positions.len() {
                        forward_references.push((index, line));
                    }
                    polygon.push(index);
                }
                if polygon.len() < 3 {
                    return Err(line_error(
                        path,
                        line,
                        format!("a face needs at least 3 vertices, this one has {}. Remove the line.", polygon.len()),
                    ));
                }
                fan(&polygon, &mut triangles);
            }
            _ => {}
        }
    }
    if let Some(&(index, line)) = forward_references.iter().find(|(index, _)| *index as usize >= positions.len()) {
        return Err(line_error(
            path,
            line,
            format!(
                "the face refers to vertex {} but the file defines only {} vertices. The file is incomplete or \
                 its indices are wrong.",
                u64::from(index) + 1,
                positions.len()
            ),
        ));
    }
    let colors = (all_colored && !positions.is_empty()).then(|| normalized_colors(colors));
    Ok(Mesh { positions, triangles, colors })
}

/// The 0-based vertex index of one `f` token (`i`, `i/t`, `i//n` or `i/t/n`; negative indices
/// count back from the last vertex read so far).
fn obj_index(token: &str, num_vertices: usize) -> Result<u32, String> {
    let text = token.split('/').next().unwrap_or_default();
    let value: i64 = text.parse().map_err(|_| format!("{token:?} is not a vertex index. Fix or remove this face."))?;
    let resolved = match value {
        0 => return Err("vertex index 0 is invalid (OBJ indices start at 1). Fix the exporter.".into()),
        v if v > 0 => v - 1,
        v => {
            let from_end = i64::try_from(num_vertices).unwrap_or(i64::MAX).saturating_add(v);
            if from_end < 0 {
                return Err(format!(
                    "relative index {v} points before the first vertex ({num_vertices} vertices are defined so far). \
                     Fix the face indices."
                ));
            }
            from_end
        }
    };
    u32::try_from(resolved).map_err(|_| format!("vertex index {value} is too large. Fix the face indices."))
}

// ---------------------------------------------------------------------------------------------
// OFF

fn parse_off(text: &str, path: &Path) -> Result<Mesh, MeshError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(k, raw)| (k + 1, strip_comment(raw).trim()))
        .filter(|(_, content)| !content.is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(file_error(path, "the file is empty. Pick an OFF mesh file."));
    };
    let mut header_tokens = header.split_whitespace();
    let keyword = header_tokens.next().unwrap_or_default();
    let has_colors = match keyword {
        "OFF" => false,
        "COFF" => true,
        _ => {
            return Err(line_error(
                path,
                header_line,
                format!("an OFF file starts with OFF or COFF, this one with {keyword:?}. Check the file type."),
            ));
        }
    };
    // The counts may follow the keyword on the same line or stand on the next one.
    let mut count_tokens: Vec<&str> = header_tokens.collect();
    let mut counts_line = header_line;
    if count_tokens.is_empty() {
        let Some((line, content)) = lines.next() else {
            return Err(file_error(path, "the file ends after its header; the vertex and face counts are missing."));
        };
        counts_line = line;
        count_tokens = content.split_whitespace().collect();
    }
    let count = |k: usize, what: &str| -> Result<usize, MeshError> {
        let token = count_tokens.get(k).copied().unwrap_or_default();
        token.parse().map_err(|_| {
            line_error(path, counts_line, format!("the {what} count {token:?} is not a whole number. Fix the header."))
        })
    };
    let num_vertices = count(0, "vertex")?;
    let num_faces = count(1, "face")?;
    // The shortest vertex line is "0 0 0\n" and the shortest face line "3 0 1 2\n".
    let least_bytes = (num_vertices as u128) * 6 + (num_faces as u128) * 8;
    if least_bytes > text.len() as u128 + 2 {
        return Err(line_error(
            path,
            counts_line,
            format!(
                "the header declares {num_vertices} vertices and {num_faces} faces, more than a file of {} bytes \
                 can hold. The file is truncated or its header is corrupt; re-export the mesh.",
                text.len()
            ),
        ));
    }

    // The size check above bounds the counts; the `min` keeps a mistake there from costing memory.
    let capacity = num_vertices.min(text.len());
    let mut positions = Vec::with_capacity(capacity);
    let mut colors = Vec::with_capacity(if has_colors { capacity } else { 0 });
    for k in 0..num_vertices {
        let Some((line, content)) = lines.next() else {
            return Err(file_error(
                path,
                format!("the file ends after {k} of its {num_vertices} vertices (truncated). Re-export the mesh."),
            ));
        };
        let values = content
            .split_whitespace()
            .map(parse_coordinate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| line_error(path, line, r))?;
        let Some(&[x, y, z]) = values.get(..3).and_then(|v| <&[f32; 3]>::try_from(v).ok()) else {
            return Err(line_error(path, line, "a vertex needs 3 coordinates. Fix or remove this line."));
        };
        positions.push(Vec3::new(x, y, z));
        if has_colors {
            let Some(&[r, g, b]) = values.get(3..6).and_then(|v| <&[f32; 3]>::try_from(v).ok()) else {
                return Err(line_error(path, line, "a COFF vertex reads `x y z r g b [a]`; the colour is missing."));
            };
            colors.push(Vec3::new(r, g, b));
        }
    }

    let mut triangles = Vec::new();
    let mut polygon = Vec::new();
    for k in 0..num_faces {
        let Some((line, content)) = lines.next() else {
            return Err(file_error(
                path,
                format!("the file ends after {k} of its {num_faces} faces (truncated). Re-export the mesh."),
            ));
        };
        let mut tokens = content.split_whitespace();
        let first = tokens.next().unwrap_or_default();
        let Ok(size) = first.parse::<usize>() else {
            return Err(line_error(path, line, format!("the face size {first:?} is not a whole number.")));
        };
        if size < 3 {
            return Err(line_error(
                path,
                line,
                format!("a face needs at least 3 vertices, this one has {size}. Remove the face."),
            ));
        }
        polygon.clear();
        // Tokens after the indices (a face colour) are ignored.
        for _ in 0..size {
            let Some(token) = tokens.next() else {
                return Err(line_error(path, line, format!("the face declares {size} vertices but lists fewer.")));
            };
            let index = token.parse::<u32>().ok().filter(|&i| (i as usize) < num_vertices).ok_or_else(|| {
                line_error(
                    path,
                    line,
                    format!(
                        "vertex index {token:?} is not one of the {num_vertices} vertices (0 to {}). Fix the face.",
                        num_vertices.saturating_sub(1)
                    ),
                )
            })?;
            polygon.push(index);
        }
        fan(&polygon, &mut triangles);
    }
    let colors = (has_colors && !positions.is_empty()).then(|| normalized_colors(colors));
    Ok(Mesh { positions, triangles, colors })
}

// ---------------------------------------------------------------------------------------------
// PLY

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "char" | "int8" => Self::I8,
            "uchar" | "uint8" => Self::U8,
            "short" | "int16" => Self::I16,
            "ushort" | "uint16" => Self::U16,
            "int" | "int32" => Self::I32,
            "uint" | "uint32" => Self::U32,
            "float" | "float32" => Self::F32,
            "double" | "float64" => Self::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// The stored value of full intensity when a colour channel has this type.
    fn color_full_scale(self) -> f64 {
        match self {
            Self::U16 => 65_535.0,
            Self::F32 | Self::F64 => 1.0,
            _ => 255.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum PropertyKind {
    Scalar(Scalar),
    List { count: Scalar, item: Scalar },
}

#[derive(Clone, Debug)]
struct Property {
    name: String,
    kind: PropertyKind,
}

#[derive(Clone, Debug)]
struct Element {
    name: String,
    count: usize,
    properties: Vec<Property>,
}

impl Element {
    fn scalar_slot(&self, names: &[&str]) -> Option<(usize, Scalar)> {
        self.properties.iter().enumerate().find_map(|(k, p)| match p.kind {
            PropertyKind::Scalar(s) if names.contains(&p.name.as_str()) => Some((k, s)),
            _ => None,
        })
    }

    /// The fewest bytes one instance can take in the body.
    fn least_instance_bytes(&self, encoding: Encoding) -> usize {
        match encoding {
            // One digit and one separator per value.
            Encoding::Ascii => 2 * self.properties.len(),
            Encoding::BinaryLittleEndian | Encoding::BinaryBigEndian => self
                .properties
                .iter()
                .map(|p| match p.kind {
                    PropertyKind::Scalar(s) => s.size(),
                    PropertyKind::List { count, .. } => count.size(),
                })
                .sum(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Ascii,
    BinaryLittleEndian,
    BinaryBigEndian,
}

struct PlyHeader {
    encoding: Encoding,
    elements: Vec<Element>,
    /// Where the body starts, in bytes and in lines (1-based line of the first body line).
    body_offset: usize,
    body_first_line: usize,
}

fn parse_ply_header(bytes: &[u8], path: &Path) -> Result<PlyHeader, MeshError> {
    let mut offset = 0;
    let mut line_number = 0;
    let mut encoding = None;
    let mut elements: Vec<Element> = Vec::new();
    loop {
        let Some(newline) = bytes.get(offset..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) else {
            return Err(file_error(
                path,
                "the PLY header has no end_header line (the file is truncated or not a PLY file).",
            ));
        };
        let raw = bytes.get(offset..offset + newline).unwrap_or_default();
        offset += newline + 1;
        line_number += 1;
        let text: Cow<str> = String::from_utf8_lossy(raw);
        let mut tokens = text.split_whitespace();
        let keyword = tokens.next().unwrap_or_default();
        if line_number == 1 {
            if keyword != "ply" {
                return Err(line_error(path, 1, "a PLY file starts with the line `ply`. Check the file type."));
            }
            continue;
        }
        let bad = |reason: String| line_error(path, line_number, reason);
        match keyword {
            "format" => {
                encoding = Some(match tokens.next().unwrap_or_default() {
                    "ascii" => Encoding::Ascii,
                    "binary_little_endian" => Encoding::BinaryLittleEndian,
                    "binary_big_endian" => Encoding::BinaryBigEndian,
                    other => {
                        return Err(bad(format!(
                            "unknown PLY format {other:?}; expected ascii, binary_little_endian or binary_big_endian."
                        )));
                    }
                });
            }
            "element" => {
                let name = tokens.next().unwrap_or_default().to_owned();
                let count_token = tokens.next().unwrap_or_default();
                let count = count_token.parse().map_err(|_| {
                    bad(format!("the count {count_token:?} of element {name:?} is not a whole number. Fix the header."))
                })?;
                elements.push(Element { name, count, properties: Vec::new() });
            }
            "property" => {
                let Some(element) = elements.last_mut() else {
                    return Err(bad("a property comes before any element. Fix the header.".into()));
                };
                let type_name = tokens.next().unwrap_or_default();
                let kind = if type_name == "list" {
                    let count_name = tokens.next().unwrap_or_default();
                    let item_name = tokens.next().unwrap_or_default();
                    match (Scalar::parse(count_name), Scalar::parse(item_name)) {
                        (Some(count), Some(item)) => PropertyKind::List { count, item },
                        _ => {
                            return Err(bad(format!(
                                "unknown list types {count_name:?} / {item_name:?}. Fix the header."
                            )));
                        }
                    }
                } else {
                    PropertyKind::Scalar(
                        Scalar::parse(type_name)
                            .ok_or_else(|| bad(format!("unknown property type {type_name:?}. Fix the header.")))?,
                    )
                };
                let name = tokens.next().unwrap_or_default().to_owned();
                element.properties.push(Property { name, kind });
            }
            "end_header" => break,
            // comment, obj_info and blank lines.
            _ => {}
        }
    }
    let encoding = encoding.ok_or_else(|| file_error(path, "the PLY header has no `format` line. Fix the header."))?;
    Ok(PlyHeader { encoding, elements, body_offset: offset, body_first_line: line_number + 1 })
}

/// Reads body values one at a time, as text tokens or binary numbers.
enum BodyReader<'a> {
    Ascii { lines: std::iter::Enumerate<std::str::Lines<'a>>, tokens: std::str::SplitWhitespace<'a>, line: usize },
    Binary { bytes: &'a [u8], position: usize, little_endian: bool },
}

impl BodyReader<'_> {
    fn read(&mut self, scalar: Scalar) -> Result<f64, String> {
        const TRUNCATED: &str = "the file ends inside this element (truncated). Re-export or re-download the mesh.";
        match self {
            Self::Ascii { lines, tokens, line } => {
                let token = loop {
                    if let Some(token) = tokens.next() {
                        break token;
                    }
                    let Some((k, next)) = lines.next() else {
                        return Err(TRUNCATED.into());
                    };
                    *line = k;
                    *tokens = next.split_whitespace();
                };
                let value: f64 = token.parse().map_err(|_| format!("{token:?} is not a number. Fix the value."))?;
                if matches!(scalar, Scalar::F32 | Scalar::F64) || value.fract() == 0.0 || !value.is_finite() {
                    Ok(value)
                } else {
                    Err(format!("{token:?} is not a whole number, but the header declares an integer."))
                }
            }
            Self::Binary { bytes, position, little_endian } => {
                let size = scalar.size();
                let Some(raw) = bytes.get(*position..position.saturating_add(size)) else {
                    return Err(TRUNCATED.into());
                };
                *position += size;
                Ok(decode_binary(raw, scalar, *little_endian))
            }
        }
    }

    /// Where the reader is, for a message: a line for text, the element and its index for binary.
    fn error(&self, path: &Path, first_line: usize, element: &str, index: usize, reason: String) -> MeshError {
        match self {
            Self::Ascii { line, .. } => line_error(path, first_line + line, reason),
            Self::Binary { .. } => {
                MeshError::Element { path: path.to_owned(), element: element.to_owned(), index, reason }
            }
        }
    }
}

fn decode_binary(raw: &[u8], scalar: Scalar, little_endian: bool) -> f64 {
    fn array<const N: usize>(raw: &[u8], little_endian: bool) -> [u8; N] {
        let mut out = [0; N];
        for (o, b) in out.iter_mut().zip(raw) {
            *o = *b;
        }
        if !little_endian {
            out.reverse();
        }
        out
    }
    match scalar {
        Scalar::I8 => f64::from(i8::from_le_bytes(array(raw, little_endian))),
        Scalar::U8 => f64::from(u8::from_le_bytes(array(raw, little_endian))),
        Scalar::I16 => f64::from(i16::from_le_bytes(array(raw, little_endian))),
        Scalar::U16 => f64::from(u16::from_le_bytes(array(raw, little_endian))),
        Scalar::I32 => f64::from(i32::from_le_bytes(array(raw, little_endian))),
        Scalar::U32 => f64::from(u32::from_le_bytes(array(raw, little_endian))),
        Scalar::F32 => f64::from(f32::from_le_bytes(array(raw, little_endian))),
        Scalar::F64 => f64::from_le_bytes(array(raw, little_endian)),
    }
}

/// `value` as an index below `limit`, if it is one.
fn as_index(value: f64, limit: usize) -> Option<u32> {
    // The range check comes first, so the cast is exact.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value >= 0.0 && value < limit as f64 && value <= f64::from(u32::MAX)).then_some(value as u32)
}

fn parse_ply(bytes: &[u8], path: &Path) -> Result<Mesh, MeshError> {
    let header = parse_ply_header(bytes, path)?;
    let body = bytes.get(header.body_offset..).unwrap_or_default();

    let Some(vertex_element) = header.elements.iter().position(|e| e.name == "vertex") else {
        return Err(file_error(
            path,
            "the PLY header declares no `vertex` element. Export the mesh with its vertices.",
        ));
    };
    let vertex = &header.elements[vertex_element];
    let num_vertices = vertex.count;
    let coordinate_slots = [&["x"][..], &["y"], &["z"]].map(|names| vertex.scalar_slot(names));
    let [Some(x_slot), Some(y_slot), Some(z_slot)] = coordinate_slots else {
        return Err(file_error(path, "the `vertex` element lacks an x, y or z property. Export positions as x y z."));
    };
    let color_slots =
        [&["red", "r", "diffuse_red"][..], &["green", "g", "diffuse_green"], &["blue", "b", "diffuse_blue"]]
            .map(|names| vertex.scalar_slot(names));
    let color_slots = match color_slots {
        [Some(r), Some(g), Some(b)] => Some([r, g, b]),
        _ => None,
    };
    let face_element = header.elements.iter().position(|e| e.name == "face");
    let index_slot = face_element.and_then(|f| {
        header.elements[f].properties.iter().position(|p| {
            matches!(p.kind, PropertyKind::List { .. }) && (p.name == "vertex_indices" || p.name == "vertex_index")
        })
    });
    let (Some(face_element), Some(index_slot)) = (face_element, index_slot) else {
        return Err(file_error(
            path,
            "the PLY file has no `face` element with a `vertex_indices` list, so it holds no surface (a point \
             cloud?). Export the mesh with its faces.",
        ));
    };

    // Refuse counts the file cannot hold before allocating anything for them.
    let least_bytes: u128 =
        header.elements.iter().map(|e| e.count as u128 * e.least_instance_bytes(header.encoding) as u128).sum();
    if least_bytes > body.len() as u128 + 1 {
        let counts: Vec<String> = header.elements.iter().map(|e| format!("{} {}", e.count, e.name)).collect();
        return Err(file_error(
            path,
            format!(
                "the header declares {} but the body has only {} bytes. The file is truncated or its header is \
                 corrupt; re-export the mesh.",
                counts.join(", "),
                body.len()
            ),
        ));
    }

    let body_text;
    let mut reader = match header.encoding {
        Encoding::Ascii => {
            body_text = String::from_utf8_lossy(body);
            BodyReader::Ascii { lines: body_text.lines().enumerate(), tokens: "".split_whitespace(), line: 0 }
        }
        Encoding::BinaryLittleEndian => BodyReader::Binary { bytes: body, position: 0, little_endian: true },
        Encoding::BinaryBigEndian => BodyReader::Binary { bytes: body, position: 0, little_endian: false },
    };

    // The size check above bounds the counts; the `min` keeps a mistake there from costing memory.
    let capacity = num_vertices.min(body.len());
    let mut positions = Vec::with_capacity(capacity);
    let mut colors = Vec::with_capacity(if color_slots.is_some() { capacity } else { 0 });
    let mut triangles = Vec::new();
    let mut polygon = Vec::new();
    let mut values = Vec::new();
    for (element_index, element) in header.elements.iter().enumerate() {
        if element.properties.is_empty() {
            continue;
        }
        for index in 0..element.count {
            let fail = |reader: &BodyReader, reason: String| {
                reader.error(path, header.body_first_line, &element.name, index, reason)
            };
            values.clear();
            polygon.clear();
            for (slot, property) in element.properties.iter().enumerate() {
                match property.kind {
                    PropertyKind::Scalar(scalar) => {
                        let value = reader.read(scalar).map_err(|r| fail(&reader, r))?;
                        values.push(value);
                    }
                    PropertyKind::List { count, item } => {
                        values.push(0.0);
                        let size = reader.read(count).map_err(|r| fail(&reader, r))?;
                        let Some(size) = as_index(size, usize::MAX) else {
                            return Err(fail(&reader, format!("the list length {size} is not a valid count.")));
                        };
                        let is_face_list = element_index == face_element && slot == index_slot;
                        if is_face_list && size < 3 {
                            return Err(fail(
                                &reader,
                                format!("a face needs at least 3 vertices, this one has {size}. Remove the face."),
                            ));
                        }
                        for _ in 0..size {
                            let value = reader.read(item).map_err(|r| fail(&reader, r))?;
                            if is_face_list {
                                let Some(vertex) = as_index(value, num_vertices) else {
                                    return Err(fail(
                                        &reader,
                                        format!(
                                            "vertex index {value} is not one of the {num_vertices} vertices (0 to \
                                             {}). Fix the face indices.",
                                            num_vertices.saturating_sub(1)
                                        ),
                                    ));
                                };
                                polygon.push(vertex);
                            }
                        }
                    }
                }
            }
            if element_index == vertex_element {
                #[allow(clippy::cast_possible_truncation)] // positions are stored in f32 by design
                let coordinate = |slot: (usize, Scalar)| values.get(slot.0).map_or(f32::NAN, |&v| v as f32);
                let position = Vec3::new(coordinate(x_slot), coordinate(y_slot), coordinate(z_slot));
                if !position.is_finite() {
                    return Err(fail(
                        &reader,
                        format!("the position {position} is not finite. Fix the exporter or remove the vertex."),
                    ));
                }
                positions.push(position);
                if let Some(slots) = color_slots {
                    #[allow(clippy::cast_possible_truncation)] // colours are stored in f32 by design
                    let channel = |(slot, scalar): (usize, Scalar)| {
                        values.get(slot).map_or(0.0, |&v| (v / scalar.color_full_scale()) as f32)
                    };
                    colors.push(Vec3::new(channel(slots[0]), channel(slots[1]), channel(slots[2])));
                }
            } else if element_index == face_element {
                fan(&polygon, &mut triangles);
            }
        }
    }
    let colors = (color_slots.is_some() && !positions.is_empty())
        .then(|| colors.into_iter().map(|c: Vec3| c.clamp(Vec3::ZERO, Vec3::ONE)).collect());
    Ok(Mesh { positions, triangles, colors })
}
