// The C side of vkrt: the few Vulkan entry points vulkan-go does not wrap (Properties2/Features2,
// push descriptors, debug utils), device creation with a pNext chain built in C memory, and the
// per-dispatch hot path, which must not go through vulkan-go's per-call allocations.
#ifndef CHN_SHIM_H
#define CHN_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include "vk.h"

#define CHN_MAX_BINDINGS 10
#define CHN_MAX_PUSH 128

// chn_load opens the Vulkan loader (libvulkan.so.1, then libvulkan.so). It returns 0 on success,
// else -1 with a message in err.
int chn_load(char *err, size_t errlen);
// chn_gipa is the loader's vkGetInstanceProcAddr, handed to vulkan-go.
void *chn_gipa(void);

// chn_instance holds instance-level entry points and the debug message collector.
typedef struct chn_instance chn_instance;
chn_instance *chn_instance_new(VkInstance inst);
void chn_instance_free(chn_instance *ci);
// chn_debug_install creates a debug-utils messenger that collects warnings and errors.
VkResult chn_debug_install(chn_instance *ci);
// chn_debug_take copies (and clears) the collected messages, newline separated, into buf, and
// returns the number of error-severity messages seen since the last call.
int chn_debug_take(chn_instance *ci, char *buf, size_t len, int *warnings);
// chn_validation_features returns a static VkValidationFeaturesEXT enabling synchronization
// validation, for an instance create info's pNext.
void *chn_validation_features(void);

#define CHN_MAX_COOPMAT_SHAPES 32

// chn_coopmat_shape is one VkCooperativeMatrixPropertiesNV entry: an M×K by K×N product with
// component types (VkComponentTypeNV) a, b, c, d and scope (VkScopeNV).
typedef struct {
	uint32_t m, n, k;
	uint32_t a, b, c, d;
	uint32_t scope;
} chn_coopmat_shape;

typedef struct {
	uint32_t api_version;
	uint32_t driver_id;
	char driver_name[256];
	char driver_info[256];
	uint32_t subgroup_size, subgroup_stages, subgroup_ops;
	uint32_t min_subgroup_size, max_subgroup_size;
	uint32_t max_push_descriptors;
	uint64_t max_memory_allocation_size;
	uint64_t max_buffer_size;
	int subgroup_size_control, compute_full_subgroups;
	int shader_float16, storage_buffer16, shader_int64;
	int vulkan_memory_model, buffer_device_address, timeline_semaphore;
	int coopmat_nv, coopmat_khr, coopmat2_nv;
	int push_descriptor;
	uint32_t coopmat_nv_f16_shapes; // how many fp16 x fp16 -> fp32 subgroup shapes the device lists
	uint32_t coopmat_nv_nshapes;    // entries of coopmat_nv_shapes filled (the first CHN_MAX_COOPMAT_SHAPES)
	chn_coopmat_shape coopmat_nv_shapes[CHN_MAX_COOPMAT_SHAPES];
} chn_caps;

// chn_query_caps fills caps from vkGetPhysicalDeviceProperties2/Features2 with chains in C
// memory, given the device's extension list (newline separated, from chn_device_extensions).
void chn_query_caps(chn_instance *ci, VkPhysicalDevice pd, const char *exts, chn_caps *caps);
// chn_device_extensions writes the device's extension names, newline separated.
VkResult chn_device_extensions(chn_instance *ci, VkPhysicalDevice pd, char *buf, size_t len);

// chn_device holds device-level entry points (from vkGetDeviceProcAddr: no loader trampoline).
typedef struct chn_device chn_device;

typedef struct {
	uint32_t api_version; // the device's, capped at the instance's
	uint32_t queue_family;
	int push_descriptor;       // enable VK_KHR_push_descriptor
	int float16_storage;       // enable shaderFloat16 + storageBuffer16BitAccess
	int subgroup_size_control; // enable subgroupSizeControl + computeFullSubgroups
	int coopmat_nv;            // enable VK_NV_cooperative_matrix (+ vulkanMemoryModel)
} chn_device_req;

VkResult chn_device_create(chn_instance *ci, VkPhysicalDevice pd, const chn_device_req *req, chn_device **out);
void chn_device_destroy(chn_device *d);
VkDevice chn_device_handle(chn_device *d);
VkQueue chn_device_queue(chn_device *d);

// chn_create_layouts makes one descriptor-set layout and one pipeline layout (with a push range
// of CHN_MAX_PUSH bytes) per binding count 0..CHN_MAX_BINDINGS.
VkResult chn_create_layouts(chn_device *d, int push_descriptor, VkDescriptorSetLayout *sets, VkPipelineLayout *pipes);
void chn_destroy_layouts(chn_device *d, VkDescriptorSetLayout *sets, VkPipelineLayout *pipes);
VkResult chn_create_module(chn_device *d, const uint32_t *code, size_t bytes, VkShaderModule *out);
void chn_destroy_module(chn_device *d, VkShaderModule m);
// chn_create_pipeline specializes constant_id i to spec[i].
VkResult chn_create_pipeline(chn_device *d, VkShaderModule m, VkPipelineLayout layout, const uint32_t *spec, uint32_t nspec, VkPipeline *out);
void chn_destroy_pipeline(chn_device *d, VkPipeline p);

// A descriptor-set pool for devices without push descriptors: sets are allocated per dispatch
// and the whole pool is reset when its command buffer's fence has signalled.
typedef struct chn_pool chn_pool;
chn_pool *chn_pool_new(chn_device *d, VkDescriptorSetLayout *layouts /* [CHN_MAX_BINDINGS+1] by binding count */);
void chn_pool_reset(chn_pool *p);
void chn_pool_free(chn_pool *p);

// chn_dispatch is everything one dispatch needs; it is filled in Go memory (it holds no Go
// pointers) and recorded with a single cgo call.
typedef struct {
	VkPipeline pipeline;
	VkPipelineLayout layout;
	VkBuffer buf[CHN_MAX_BINDINGS];
	VkDeviceSize off[CHN_MAX_BINDINGS];
	VkDeviceSize rang[CHN_MAX_BINDINGS]; // "range" is a Go keyword for cgo
	uint32_t nbind;
	uint32_t push_size;
	uint32_t groups[3];
	uint32_t barrier; // 1: a compute/transfer -> compute/transfer memory barrier first
	uint8_t push[CHN_MAX_PUSH];
} chn_dispatch;

// chn_cmd_dispatch records an optional barrier, the pipeline bind, the descriptors (pushed, or
// allocated from pool when pool is not NULL), the push constants and the dispatch.
VkResult chn_cmd_dispatch(chn_device *d, VkCommandBuffer cb, chn_pool *pool, const chn_dispatch *dp);
// chn_cmd_barrier records a global memory barrier from compute and transfer work to compute,
// transfer and (if host is set) host reads.
void chn_cmd_barrier(chn_device *d, VkCommandBuffer cb, int host);
// chn_cmd_copy records a buffer copy of n regions.
void chn_cmd_copy(chn_device *d, VkCommandBuffer cb, VkBuffer src, VkBuffer dst, uint32_t n, const VkBufferCopy *regions);
void chn_cmd_timestamp(chn_device *d, VkCommandBuffer cb, VkQueryPool pool, uint32_t query);
void chn_cmd_reset_queries(chn_device *d, VkCommandBuffer cb, VkQueryPool pool, uint32_t first, uint32_t count);

VkResult chn_begin(chn_device *d, VkCommandBuffer cb);
// chn_begin_reusable begins a command buffer that is submitted many times, possibly while an
// earlier submission of it still runs (VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT).
VkResult chn_begin_reusable(chn_device *d, VkCommandBuffer cb);
VkResult chn_end(chn_device *d, VkCommandBuffer cb);
VkResult chn_submit(chn_device *d, VkCommandBuffer cb, VkFence fence);
VkResult chn_wait(chn_device *d, VkFence fence, uint64_t timeout_ns);
VkResult chn_fence_status(chn_device *d, VkFence fence);
VkResult chn_reset_fence(chn_device *d, VkFence fence);

// chn_provoke_invalid makes a call the validation layer must reject but the driver tolerates
// (a zero-sized buffer that is destroyed at once), to prove the debug callback is wired.
void chn_provoke_invalid(chn_device *d);

#endif
