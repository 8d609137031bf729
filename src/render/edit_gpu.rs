//! The INSP edit of an INR on the GPU (`shaders/inr_edit.wgsl`): Taylor-mode derivatives through
//! the SIREN, one compute pass per layer over a band of pixels with every neuron in parallel,
//! then the operator MLP per pixel. Offscreen and blocking: the edit lab calls it from a
//! background job for any window and resolution; tests compare it with the CPU twin.

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt as _;

use super::gpu_types::EditParamsUniform;
use super::inr_view::{ViewWindow, buffer_entry};
use crate::compute::inr::SirenWeights;
use crate::compute::inr::insp::{MAX_OPERATOR_WIDTH, OperatorWeights};
use crate::compute::inr::siren_op::layer_slots;
use crate::compute::inr::weights::MAX_WIDTH;

/// Highest derivative order the shader carries (`MAX_ORDER` in the WGSL).
pub const GPU_MAX_ORDER: usize = 4;
/// Pixels per band when the device allows it (the jet buffers hold `band · P · width` floats).
const BAND_PIXELS: u32 = 2048;
const WORKGROUP: u32 = 64;

/// The edit's pipelines; one per device.
pub struct EditGpu {
    first_layer: wgpu::ComputePipeline,
    hidden_layer: wgpu::ComputePipeline,
    edit: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl EditGpu {
    pub fn new(device: &wgpu::Device) -> Self {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let compute = wgpu::ShaderStages::COMPUTE;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("inr edit"),
            entries: &[
                buffer_entry(0, compute, Uniform),
                buffer_entry(1, compute, Storage { read_only: true }),
                buffer_entry(2, compute, Storage { read_only: true }),
                buffer_entry(3, compute, Storage { read_only: true }),
                buffer_entry(4, compute, Storage { read_only: true }),
                buffer_entry(5, compute, Storage { read_only: false }),
                buffer_entry(6, compute, Storage { read_only: false }),
            ],
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("inr_edit.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::SHADERS[3].1.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("inr edit"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry_point: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        };
        Self {
            first_layer: pipeline("first_layer"),
            hidden_layer: pipeline("hidden_layer"),
            edit: pipeline("edit"),
            layout,
        }
    }

    /// The edit of `inr` by `operator` at the centres of a `grid` over `window`, row-major
    /// `[c0, c1, c2, 1]` per pixel (gray repeated), blocking until the GPU is done.
    pub fn evaluate(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        operator: &OperatorWeights,
        inr: &SirenWeights,
        window: ViewWindow,
        grid: (u32, u32),
    ) -> Result<Vec<[f32; 4]>, String> {
        inr.validate()?;
        operator.validate()?;
        let spec = &operator.spec;
        if spec.order > GPU_MAX_ORDER || spec.width > MAX_OPERATOR_WIDTH || inr.config.width > MAX_WIDTH {
            return Err(format!(
                "the GPU edit supports derivative order ≤ {GPU_MAX_ORDER} and widths ≤ 256 (order {}, operator width {})",
                spec.order, spec.width
            ));
        }
        let max_pixels = (device.limits().max_storage_buffer_binding_size / 16).min(1 << 24);
        let pixels = grid
            .0
            .checked_mul(grid.1)
            .filter(|&n| n > 0 && u64::from(n) <= max_pixels)
            .ok_or_else(|| format!("the grid must hold 1 to {max_pixels} pixels on this device"))?;
        let partials = spec.partials().map_err(|e| e.to_string())?;
        let p = partials.len();
        let width = inr.config.width;
        let bytes_per_pixel = (p * width * 4) as u64;
        let max_binding = device.limits().max_storage_buffer_binding_size.min(device.limits().max_buffer_size);
        let band = u32::try_from((max_binding / bytes_per_pixel).min(u64::from(BAND_PIXELS)))
            .unwrap_or(BAND_PIXELS)
            .min(device.limits().max_compute_workgroups_per_dimension)
            .max(1);

        let mut tables: Vec<u32> =
            partials.indices().iter().map(|&(i, j)| u32::try_from(i + 256 * j).unwrap_or(0)).collect();
        for &(k, a, b) in partials.products() {
            tables.extend([k, a, b].map(|v| u32::try_from(v).unwrap_or(0)));
        }
        let mut op_flat = operator.feature_shift.clone();
        op_flat.extend(&operator.feature_scale);
        for layer in &operator.layers {
            op_flat.extend(&layer.weight);
            op_flat.extend(&layer.bias);
        }
        let storage = |label: &str, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let siren_buffer = storage("edit siren", bytemuck::cast_slice(&inr.flatten()));
        let op_buffer = storage("edit operator", bytemuck::cast_slice(&op_flat));
        let table_buffer = storage("edit tables", bytemuck::cast_slice(&tables));
        let jets = [0, 1].map(|_| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("edit jets"),
                size: u64::from(band) * bytes_per_pixel,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        let values = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("edit values"),
            size: u64::from(pixels) * 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });

        // One uniform and bind group per pass: pass t writes jets[t % 2] and reads the other.
        let slots = layer_slots(&inr.config);
        let (origin, step) = window.origin_and_step(grid);
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let base = EditParamsUniform {
            origin,
            step,
            grid_width: grid.0,
            width: to_u32(width),
            omega0: inr.config.omega0,
            out_features: to_u32(inr.config.out_features),
            num_partials: to_u32(p),
            order: to_u32(spec.order),
            num_products: to_u32(partials.products().len()),
            op_layers: to_u32(spec.hidden_layers),
            op_width: to_u32(spec.width),
            residual: u32::from(spec.residual),
            ..EditParamsUniform::default()
        };
        let passes: Vec<(wgpu::Buffer, wgpu::BindGroup)> = slots
            .iter()
            .enumerate()
            .map(|(t, _)| {
                let uniform = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("edit params"),
                    size: std::mem::size_of::<EditParamsUniform>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("edit pass"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: siren_buffer.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 2, resource: op_buffer.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 3, resource: table_buffer.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 4, resource: jets[1 - t % 2].as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 5, resource: jets[t % 2].as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 6, resource: values.as_entire_binding() },
                    ],
                });
                (uniform, bind_group)
            })
            .collect();
        let last = slots.len() - 1;
        let mut begin = 0;
        while begin < pixels {
            let count = band.min(pixels - begin);
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("inr edit") });
            for (t, ((uniform, bind_group), slot)) in passes.iter().zip(&slots).enumerate() {
                let params = EditParamsUniform {
                    pixel_begin: begin,
                    pixel_count: count,
                    layer_offset: to_u32(slot.weight_offset),
                    fan_in: to_u32(slot.fan_in),
                    ..base
                };
                queue.write_buffer(uniform, 0, bytemuck::bytes_of(&params));
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("inr edit"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, bind_group, &[]);
                if t == last {
                    pass.set_pipeline(&self.edit);
                    pass.dispatch_workgroups(count.div_ceil(WORKGROUP), 1, 1);
                } else {
                    pass.set_pipeline(if t == 0 { &self.first_layer } else { &self.hidden_layer });
                    pass.dispatch_workgroups(to_u32(width).div_ceil(WORKGROUP), count, 1);
                }
            }
            queue.submit([encoder.finish()]);
            begin += count;
        }
        super::read_vec4_buffer(device, queue, &values, u64::from(pixels) * 16)
    }
}
