#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *libvulkan;
static PFN_vkGetInstanceProcAddr gipa;

int chn_load(char *err, size_t errlen) {
	if (gipa) {
		return 0;
	}
	// Debian ships the unversioned name only with libvulkan-dev; the versioned one is the runtime.
	const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
	const char *why = "";
	for (int i = 0; i < 2 && !libvulkan; i++) {
		libvulkan = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!libvulkan) {
			why = dlerror();
		}
	}
	if (!libvulkan) {
		snprintf(err, errlen, "cannot open libvulkan.so.1 or libvulkan.so: %s", why ? why : "");
		return -1;
	}
	gipa = (PFN_vkGetInstanceProcAddr)dlsym(libvulkan, "vkGetInstanceProcAddr");
	if (!gipa) {
		snprintf(err, errlen, "libvulkan has no vkGetInstanceProcAddr");
		return -1;
	}
	return 0;
}

void *chn_gipa(void) { return (void *)gipa; }

// ---------------------------------------------------------------------------------------------
// Instance

struct chn_instance {
	VkInstance inst;
	PFN_vkGetPhysicalDeviceProperties2 getProps2;
	PFN_vkGetPhysicalDeviceFeatures2 getFeats2;
	PFN_vkGetPhysicalDeviceFeatures getFeats;
	PFN_vkEnumerateDeviceExtensionProperties enumExts;
	PFN_vkCreateDevice createDevice;
	PFN_vkGetDeviceProcAddr gdpa;
	PFN_vkGetDeviceQueue getQueue;
	PFN_vkCreateDebugUtilsMessengerEXT createMessenger;
	PFN_vkDestroyDebugUtilsMessengerEXT destroyMessenger;
	PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV coopmatPropsNV;
	VkDebugUtilsMessengerEXT messenger;

	pthread_mutex_t mu;
	char *log;
	size_t loglen, logcap;
	int errors, warnings;
};

#define IPROC(ci, name) ((PFN_##name)gipa((ci)->inst, #name))

chn_instance *chn_instance_new(VkInstance inst) {
	chn_instance *ci = calloc(1, sizeof *ci);
	if (!ci) {
		return NULL;
	}
	ci->inst = inst;
	ci->getProps2 = IPROC(ci, vkGetPhysicalDeviceProperties2);
	ci->getFeats2 = IPROC(ci, vkGetPhysicalDeviceFeatures2);
	ci->getFeats = IPROC(ci, vkGetPhysicalDeviceFeatures);
	ci->enumExts = IPROC(ci, vkEnumerateDeviceExtensionProperties);
	ci->createDevice = IPROC(ci, vkCreateDevice);
	ci->gdpa = IPROC(ci, vkGetDeviceProcAddr);
	ci->getQueue = IPROC(ci, vkGetDeviceQueue);
	ci->createMessenger = IPROC(ci, vkCreateDebugUtilsMessengerEXT);
	ci->destroyMessenger = IPROC(ci, vkDestroyDebugUtilsMessengerEXT);
	ci->coopmatPropsNV = IPROC(ci, vkGetPhysicalDeviceCooperativeMatrixPropertiesNV);
	pthread_mutex_init(&ci->mu, NULL);
	return ci;
}

void chn_instance_free(chn_instance *ci) {
	if (!ci) {
		return;
	}
	if (ci->messenger && ci->destroyMessenger) {
		ci->destroyMessenger(ci->inst, ci->messenger, NULL);
	}
	pthread_mutex_destroy(&ci->mu);
	free(ci->log);
	free(ci);
}

// The collector keeps at most this much text; counts keep going after it is full.
#define CHN_LOG_CAP (256 * 1024)

static VkBool32 chn_debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
	VkDebugUtilsMessageTypeFlagsEXT types, const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
	(void)types;
	chn_instance *ci = user;
	const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
	pthread_mutex_lock(&ci->mu);
	if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
		ci->errors++;
	} else {
		ci->warnings++;
	}
	size_t n = strlen(msg) + 16;
	if (ci->loglen + n < CHN_LOG_CAP) {
		if (ci->loglen + n + 1 > ci->logcap) {
			size_t cap = ci->logcap ? ci->logcap * 2 : 4096;
			while (cap < ci->loglen + n + 1) {
				cap *= 2;
			}
			char *p = realloc(ci->log, cap);
			if (p) {
				ci->log = p;
				ci->logcap = cap;
			}
		}
		if (ci->loglen + n + 1 <= ci->logcap) {
			const char *tag = (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning";
			ci->loglen += (size_t)snprintf(ci->log + ci->loglen, ci->logcap - ci->loglen, "%s: %s\n", tag, msg);
		}
	}
	pthread_mutex_unlock(&ci->mu);
	return VK_FALSE; // never abort the call: the driver tolerates everything we provoke
}

VkResult chn_debug_install(chn_instance *ci) {
	if (!ci->createMessenger) {
		return VK_ERROR_EXTENSION_NOT_PRESENT;
	}
	VkDebugUtilsMessengerCreateInfoEXT info = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = chn_debug_cb,
		.pUserData = ci,
	};
	return ci->createMessenger(ci->inst, &info, NULL, &ci->messenger);
}

int chn_debug_take(chn_instance *ci, char *buf, size_t len, int *warnings) {
	pthread_mutex_lock(&ci->mu);
	int errors = ci->errors;
	*warnings = ci->warnings;
	if (len > 0) {
		size_t n = ci->loglen < len - 1 ? ci->loglen : len - 1;
		if (n) {
			memcpy(buf, ci->log, n);
		}
		buf[n] = 0;
	}
	ci->loglen = 0;
	ci->errors = 0;
	ci->warnings = 0;
	pthread_mutex_unlock(&ci->mu);
	return errors;
}

static VkValidationFeatureEnableEXT chn_vf_enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
static VkValidationFeaturesEXT chn_vf = {
	.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
	.enabledValidationFeatureCount = 1,
	.pEnabledValidationFeatures = chn_vf_enables,
};

void *chn_validation_features(void) { return &chn_vf; }

// ---------------------------------------------------------------------------------------------
// Capabilities

static int has_ext(const char *exts, const char *name) {
	size_t n = strlen(name);
	for (const char *p = exts; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && strncmp(p, name, n) == 0) {
			return 1;
		}
		if (!e) {
			break;
		}
		p = e + 1;
	}
	return 0;
}

VkResult chn_device_extensions(chn_instance *ci, VkPhysicalDevice pd, char *buf, size_t len) {
	uint32_t n = 0;
	VkResult r = ci->enumExts(pd, NULL, &n, NULL);
	if (r != VK_SUCCESS) {
		return r;
	}
	VkExtensionProperties *props = calloc(n ? n : 1, sizeof *props);
	if (!props) {
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	r = ci->enumExts(pd, NULL, &n, props);
	size_t at = 0;
	buf[0] = 0;
	for (uint32_t i = 0; r >= 0 && i < n; i++) {
		size_t l = strlen(props[i].extensionName);
		if (at + l + 2 > len) {
			break;
		}
		memcpy(buf + at, props[i].extensionName, l);
		at += l;
		buf[at++] = '\n';
		buf[at] = 0;
	}
	free(props);
	return r < 0 ? r : VK_SUCCESS;
}

// Link appends s to a pNext chain whose tail is *tail.
#define LINK(tail, s)                         \
	do {                                  \
		*(tail) = &(s);               \
		(tail) = (void **)&(s).pNext; \
	} while (0)

void chn_query_caps(chn_instance *ci, VkPhysicalDevice pd, const char *exts, chn_caps *caps) {
	uint32_t api = caps->api_version;
	caps->push_descriptor = has_ext(exts, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
	caps->coopmat_nv = has_ext(exts, "VK_NV_cooperative_matrix");
	caps->coopmat_khr = has_ext(exts, "VK_KHR_cooperative_matrix");
	caps->coopmat2_nv = has_ext(exts, "VK_NV_cooperative_matrix2");

	VkPhysicalDeviceFeatures f10;
	memset(&f10, 0, sizeof f10);
	ci->getFeats(pd, &f10);
	caps->shader_int64 = f10.bools[CHN_FEATURE_SHADER_INT64];
	if (api < VK_API_VERSION_1_1 || !ci->getProps2 || !ci->getFeats2) {
		return; // Vulkan 1.0 devices keep the defaults; the backend needs nothing more
	}

	// Properties
	VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
	VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
	VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
	VkPhysicalDeviceSubgroupSizeControlProperties ssc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
	VkPhysicalDevicePushDescriptorPropertiesKHR pdp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PUSH_DESCRIPTOR_PROPERTIES_KHR};
	VkPhysicalDeviceMaintenance4Properties m4 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
	VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
	void **tail = &p2.pNext;
	LINK(tail, sub);
	LINK(tail, m3);
	int hasSSC = api >= VK_API_VERSION_1_3 || has_ext(exts, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
	if (hasSSC) {
		LINK(tail, ssc);
	}
	if (caps->push_descriptor) {
		LINK(tail, pdp);
	}
	int hasM4 = api >= VK_API_VERSION_1_3 || has_ext(exts, VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
	if (hasM4) {
		LINK(tail, m4);
	}
	int hasDrv = api >= VK_API_VERSION_1_2 || has_ext(exts, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
	if (hasDrv) {
		LINK(tail, drv);
	}
	ci->getProps2(pd, &p2);
	caps->subgroup_size = sub.subgroupSize;
	caps->subgroup_stages = sub.supportedStages;
	caps->subgroup_ops = sub.supportedOperations;
	caps->min_subgroup_size = caps->max_subgroup_size = sub.subgroupSize;
	if (hasSSC) {
		caps->min_subgroup_size = ssc.minSubgroupSize;
		caps->max_subgroup_size = ssc.maxSubgroupSize;
	}
	caps->max_push_descriptors = pdp.maxPushDescriptors;
	caps->max_memory_allocation_size = m3.maxMemoryAllocationSize;
	caps->max_buffer_size = hasM4 ? m4.maxBufferSize : 0;
	if (hasDrv) {
		caps->driver_id = drv.driverID;
		memcpy(caps->driver_name, drv.driverName, sizeof caps->driver_name);
		memcpy(caps->driver_info, drv.driverInfo, sizeof caps->driver_info);
		caps->driver_name[sizeof caps->driver_name - 1] = 0;
		caps->driver_info[sizeof caps->driver_info - 1] = 0;
	}

	// Features
	VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
	VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
	VkPhysicalDeviceSubgroupSizeControlFeatures sscf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
	VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
	VkPhysicalDeviceBufferDeviceAddressFeatures bda = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES};
	VkPhysicalDeviceTimelineSemaphoreFeatures tls = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
	VkPhysicalDeviceCooperativeMatrixFeaturesNV cmnv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
	tail = &f2.pNext;
	LINK(tail, s16);
	int v12 = api >= VK_API_VERSION_1_2;
	if (v12 || has_ext(exts, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
		LINK(tail, f16);
	}
	if (hasSSC) {
		LINK(tail, sscf);
	}
	if (v12) {
		LINK(tail, vmm);
		LINK(tail, bda);
		LINK(tail, tls);
	}
	if (caps->coopmat_nv) {
		LINK(tail, cmnv);
	}
	ci->getFeats2(pd, &f2);
	caps->storage_buffer16 = s16.storageBuffer16BitAccess;
	caps->shader_float16 = f16.shaderFloat16;
	caps->subgroup_size_control = sscf.subgroupSizeControl;
	caps->compute_full_subgroups = sscf.computeFullSubgroups;
	caps->vulkan_memory_model = vmm.vulkanMemoryModel;
	caps->buffer_device_address = bda.bufferDeviceAddress;
	caps->timeline_semaphore = tls.timelineSemaphore;
	if (caps->coopmat_nv && !cmnv.cooperativeMatrix) {
		caps->coopmat_nv = 0;
	}
	if (caps->coopmat_nv && ci->coopmatPropsNV) {
		uint32_t n = 0;
		if (ci->coopmatPropsNV(pd, &n, NULL) == VK_SUCCESS && n > 0) {
			VkCooperativeMatrixPropertiesNV *cp = calloc(n, sizeof *cp);
			if (cp) {
				for (uint32_t i = 0; i < n; i++) {
					cp[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
				}
				if (ci->coopmatPropsNV(pd, &n, cp) >= 0) {
					for (uint32_t i = 0; i < n; i++) {
						if (caps->coopmat_nv_nshapes < CHN_MAX_COOPMAT_SHAPES) {
							chn_coopmat_shape *s = &caps->coopmat_nv_shapes[caps->coopmat_nv_nshapes++];
							s->m = cp[i].MSize;
							s->n = cp[i].NSize;
							s->k = cp[i].KSize;
							s->a = cp[i].AType;
							s->b = cp[i].BType;
							s->c = cp[i].CType;
							s->d = cp[i].DType;
							s->scope = cp[i].scope;
						}
						if (cp[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && cp[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
							cp[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && cp[i].scope == VK_SCOPE_SUBGROUP_NV) {
							caps->coopmat_nv_f16_shapes++;
						}
					}
				}
				free(cp);
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Device

struct chn_device {
	VkDevice dev;
	VkQueue queue;
	PFN_vkDestroyDevice destroyDevice;
	PFN_vkCmdBindPipeline bindPipeline;
	PFN_vkCmdPushConstants pushConstants;
	PFN_vkCmdDispatch dispatch;
	PFN_vkCmdPipelineBarrier pipelineBarrier;
	PFN_vkCmdPushDescriptorSetKHR pushDescriptors;
	PFN_vkCmdBindDescriptorSets bindSets;
	PFN_vkAllocateDescriptorSets allocSets;
	PFN_vkUpdateDescriptorSets updateSets;
	PFN_vkCreateDescriptorPool createPool;
	PFN_vkDestroyDescriptorPool destroyPool;
	PFN_vkResetDescriptorPool resetPool;
	PFN_vkCmdCopyBuffer copyBuffer;
	PFN_vkCmdWriteTimestamp writeTimestamp;
	PFN_vkCmdResetQueryPool resetQueries;
	PFN_vkBeginCommandBuffer begin;
	PFN_vkEndCommandBuffer end;
	PFN_vkQueueSubmit submit;
	PFN_vkWaitForFences waitFences;
	PFN_vkGetFenceStatus fenceStatus;
	PFN_vkResetFences resetFences;
	PFN_vkCreateBuffer createBuffer;
	PFN_vkDestroyBuffer destroyBuffer;
	PFN_vkCreateDescriptorSetLayout createSetLayout;
	PFN_vkDestroyDescriptorSetLayout destroySetLayout;
	PFN_vkCreatePipelineLayout createPipeLayout;
	PFN_vkDestroyPipelineLayout destroyPipeLayout;
	PFN_vkCreateShaderModule createModule;
	PFN_vkDestroyShaderModule destroyModule;
	PFN_vkCreateComputePipelines createPipelines;
	PFN_vkDestroyPipeline destroyPipeline;
};

VkResult chn_device_create(chn_instance *ci, VkPhysicalDevice pd, const chn_device_req *req, chn_device **out) {
	*out = NULL;
	uint32_t api = req->api_version;

	float prio = 1.0f;
	VkDeviceQueueCreateInfo q = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = req->queue_family,
		.queueCount = 1,
		.pQueuePriorities = &prio,
	};
	const char *exts[8];
	uint32_t next = 0;
	if (req->push_descriptor) {
		exts[next++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
	}
	if (req->coopmat_nv) {
		exts[next++] = "VK_NV_cooperative_matrix";
	}
	if (req->subgroup_size_control && api < VK_API_VERSION_1_3) {
		exts[next++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
	}
	if (req->float16_storage && api < VK_API_VERSION_1_2) {
		exts[next++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
	}

	VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
	VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
	VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
	VkPhysicalDeviceSubgroupSizeControlFeatures ssc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
	VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
	VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
	void **tail = &f2.pNext;
	if (req->float16_storage) {
		s16.storageBuffer16BitAccess = VK_TRUE;
		f16.shaderFloat16 = VK_TRUE;
		LINK(tail, s16);
		LINK(tail, f16);
	}
	if (req->subgroup_size_control) {
		ssc.subgroupSizeControl = VK_TRUE;
		ssc.computeFullSubgroups = VK_TRUE;
		LINK(tail, ssc);
	}
	if (req->coopmat_nv) {
		cm.cooperativeMatrix = VK_TRUE;
		vmm.vulkanMemoryModel = VK_TRUE;
		LINK(tail, cm);
		LINK(tail, vmm);
	}
	VkDeviceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = &f2,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &q,
		.enabledExtensionCount = next,
		.ppEnabledExtensionNames = next ? exts : NULL,
	};
	VkDevice dev = VK_NULL_HANDLE;
	VkResult r = ci->createDevice(pd, &info, NULL, &dev);
	if (r != VK_SUCCESS) {
		return r;
	}
	chn_device *d = calloc(1, sizeof *d);
	if (!d) {
		PFN_vkDestroyDevice destroy = (PFN_vkDestroyDevice)ci->gdpa(dev, "vkDestroyDevice");
		destroy(dev, NULL);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	d->dev = dev;
#define DPROC(name) ((PFN_##name)ci->gdpa(dev, #name))
	d->destroyDevice = DPROC(vkDestroyDevice);
	d->bindPipeline = DPROC(vkCmdBindPipeline);
	d->pushConstants = DPROC(vkCmdPushConstants);
	d->dispatch = DPROC(vkCmdDispatch);
	d->pipelineBarrier = DPROC(vkCmdPipelineBarrier);
	d->pushDescriptors = req->push_descriptor ? DPROC(vkCmdPushDescriptorSetKHR) : NULL;
	d->bindSets = DPROC(vkCmdBindDescriptorSets);
	d->allocSets = DPROC(vkAllocateDescriptorSets);
	d->updateSets = DPROC(vkUpdateDescriptorSets);
	d->createPool = DPROC(vkCreateDescriptorPool);
	d->destroyPool = DPROC(vkDestroyDescriptorPool);
	d->resetPool = DPROC(vkResetDescriptorPool);
	d->copyBuffer = DPROC(vkCmdCopyBuffer);
	d->writeTimestamp = DPROC(vkCmdWriteTimestamp);
	d->resetQueries = DPROC(vkCmdResetQueryPool);
	d->begin = DPROC(vkBeginCommandBuffer);
	d->end = DPROC(vkEndCommandBuffer);
	d->submit = DPROC(vkQueueSubmit);
	d->waitFences = DPROC(vkWaitForFences);
	d->fenceStatus = DPROC(vkGetFenceStatus);
	d->resetFences = DPROC(vkResetFences);
	d->createBuffer = DPROC(vkCreateBuffer);
	d->destroyBuffer = DPROC(vkDestroyBuffer);
	d->createSetLayout = DPROC(vkCreateDescriptorSetLayout);
	d->destroySetLayout = DPROC(vkDestroyDescriptorSetLayout);
	d->createPipeLayout = DPROC(vkCreatePipelineLayout);
	d->destroyPipeLayout = DPROC(vkDestroyPipelineLayout);
	d->createModule = DPROC(vkCreateShaderModule);
	d->destroyModule = DPROC(vkDestroyShaderModule);
	d->createPipelines = DPROC(vkCreateComputePipelines);
	d->destroyPipeline = DPROC(vkDestroyPipeline);
#undef DPROC
	ci->getQueue(dev, req->queue_family, 0, &d->queue);
	if (req->push_descriptor && !d->pushDescriptors) {
		d->destroyDevice(dev, NULL);
		free(d);
		return VK_ERROR_EXTENSION_NOT_PRESENT;
	}
	*out = d;
	return VK_SUCCESS;
}

void chn_device_destroy(chn_device *d) {
	if (!d) {
		return;
	}
	d->destroyDevice(d->dev, NULL);
	free(d);
}

VkDevice chn_device_handle(chn_device *d) { return d->dev; }
VkQueue chn_device_queue(chn_device *d) { return d->queue; }

// ---------------------------------------------------------------------------------------------
// Layouts and pipelines (vulkan-go's wrappers for these pass nested Go slices, which cgo rejects)

VkResult chn_create_layouts(chn_device *d, int push_descriptor, VkDescriptorSetLayout *sets, VkPipelineLayout *pipes) {
	VkDescriptorSetLayoutBinding binds[CHN_MAX_BINDINGS];
	for (uint32_t i = 0; i < CHN_MAX_BINDINGS; i++) {
		binds[i] = (VkDescriptorSetLayoutBinding){
			.binding = i,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.descriptorCount = 1,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
	}
	VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = CHN_MAX_PUSH};
	for (uint32_t n = 0; n <= CHN_MAX_BINDINGS; n++) {
		VkDescriptorSetLayoutCreateInfo si = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
			.flags = push_descriptor ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
			.bindingCount = n,
			.pBindings = n ? binds : NULL,
		};
		VkResult r = d->createSetLayout(d->dev, &si, NULL, &sets[n]);
		if (r != VK_SUCCESS) {
			return r;
		}
		VkPipelineLayoutCreateInfo pi = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
			.setLayoutCount = 1,
			.pSetLayouts = &sets[n],
			.pushConstantRangeCount = 1,
			.pPushConstantRanges = &pr,
		};
		r = d->createPipeLayout(d->dev, &pi, NULL, &pipes[n]);
		if (r != VK_SUCCESS) {
			return r;
		}
	}
	return VK_SUCCESS;
}

void chn_destroy_layouts(chn_device *d, VkDescriptorSetLayout *sets, VkPipelineLayout *pipes) {
	for (uint32_t n = 0; n <= CHN_MAX_BINDINGS; n++) {
		if (pipes[n]) {
			d->destroyPipeLayout(d->dev, pipes[n], NULL);
		}
		if (sets[n]) {
			d->destroySetLayout(d->dev, sets[n], NULL);
		}
	}
}

VkResult chn_create_module(chn_device *d, const uint32_t *code, size_t bytes, VkShaderModule *out) {
	VkShaderModuleCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
		.codeSize = bytes,
		.pCode = code,
	};
	return d->createModule(d->dev, &info, NULL, out);
}

void chn_destroy_module(chn_device *d, VkShaderModule m) { d->destroyModule(d->dev, m, NULL); }

VkResult chn_create_pipeline(chn_device *d, VkShaderModule m, VkPipelineLayout layout, const uint32_t *spec, uint32_t nspec, VkPipeline *out) {
	VkSpecializationMapEntry entries[32];
	if (nspec > 32) {
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	for (uint32_t i = 0; i < nspec; i++) {
		entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
	}
	VkSpecializationInfo si = {.mapEntryCount = nspec, .pMapEntries = entries, .dataSize = 4 * (size_t)nspec, .pData = spec};
	VkComputePipelineCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.stage =
			{
				.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
				.stage = VK_SHADER_STAGE_COMPUTE_BIT,
				.module = m,
				.pName = "main",
				.pSpecializationInfo = nspec ? &si : NULL,
			},
		.layout = layout,
	};
	return d->createPipelines(d->dev, VK_NULL_HANDLE, 1, &info, NULL, out);
}

void chn_destroy_pipeline(chn_device *d, VkPipeline p) { d->destroyPipeline(d->dev, p, NULL); }

// ---------------------------------------------------------------------------------------------
// Descriptor pools (fallback without VK_KHR_push_descriptor)

#define CHN_POOL_SETS 256

struct chn_pool {
	chn_device *d;
	VkDescriptorSetLayout layouts[CHN_MAX_BINDINGS + 1];
	VkDescriptorPool *pools;
	uint32_t npools, cur;
};

chn_pool *chn_pool_new(chn_device *d, VkDescriptorSetLayout *layouts) {
	chn_pool *p = calloc(1, sizeof *p);
	if (!p) {
		return NULL;
	}
	p->d = d;
	memcpy(p->layouts, layouts, sizeof p->layouts);
	return p;
}

static VkResult chn_pool_grow(chn_pool *p) {
	VkDescriptorPoolSize size = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = CHN_POOL_SETS * CHN_MAX_BINDINGS};
	VkDescriptorPoolCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
		.maxSets = CHN_POOL_SETS,
		.poolSizeCount = 1,
		.pPoolSizes = &size,
	};
	VkDescriptorPool pool;
	VkResult r = p->d->createPool(p->d->dev, &info, NULL, &pool);
	if (r != VK_SUCCESS) {
		return r;
	}
	VkDescriptorPool *grown = realloc(p->pools, (p->npools + 1) * sizeof *grown);
	if (!grown) {
		p->d->destroyPool(p->d->dev, pool, NULL);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	p->pools = grown;
	p->pools[p->npools++] = pool;
	return VK_SUCCESS;
}

static VkResult chn_pool_alloc(chn_pool *p, uint32_t nbind, VkDescriptorSet *set) {
	for (;;) {
		if (p->cur == p->npools) {
			VkResult r = chn_pool_grow(p);
			if (r != VK_SUCCESS) {
				return r;
			}
		}
		VkDescriptorSetAllocateInfo info = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
			.descriptorPool = p->pools[p->cur],
			.descriptorSetCount = 1,
			.pSetLayouts = &p->layouts[nbind],
		};
		VkResult r = p->d->allocSets(p->d->dev, &info, set);
		if (r == VK_SUCCESS) {
			return r;
		}
		if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
			return r;
		}
		p->cur++;
	}
}

void chn_pool_reset(chn_pool *p) {
	for (uint32_t i = 0; i < p->npools; i++) {
		p->d->resetPool(p->d->dev, p->pools[i], 0);
	}
	p->cur = 0;
}

void chn_pool_free(chn_pool *p) {
	if (!p) {
		return;
	}
	for (uint32_t i = 0; i < p->npools; i++) {
		p->d->destroyPool(p->d->dev, p->pools[i], NULL);
	}
	free(p->pools);
	free(p);
}

// ---------------------------------------------------------------------------------------------
// Recording

void chn_cmd_barrier(chn_device *d, VkCommandBuffer cb, int host) {
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
			VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	VkPipelineStageFlags dst = src;
	if (host) {
		mb.dstAccessMask |= VK_ACCESS_HOST_READ_BIT;
		dst |= VK_PIPELINE_STAGE_HOST_BIT;
	}
	d->pipelineBarrier(cb, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

VkResult chn_cmd_dispatch(chn_device *d, VkCommandBuffer cb, chn_pool *pool, const chn_dispatch *dp) {
	if (dp->nbind > CHN_MAX_BINDINGS || dp->push_size > CHN_MAX_PUSH) {
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	VkDescriptorBufferInfo infos[CHN_MAX_BINDINGS];
	VkWriteDescriptorSet writes[CHN_MAX_BINDINGS];
	VkDescriptorSet set = VK_NULL_HANDLE;
	if (pool && dp->nbind > 0) {
		VkResult r = chn_pool_alloc(pool, dp->nbind, &set);
		if (r != VK_SUCCESS) {
			return r;
		}
	}
	for (uint32_t i = 0; i < dp->nbind; i++) {
		infos[i] = (VkDescriptorBufferInfo){.buffer = dp->buf[i], .offset = dp->off[i], .range = dp->rang[i]};
		writes[i] = (VkWriteDescriptorSet){
			.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
			.dstSet = set,
			.dstBinding = i,
			.descriptorCount = 1,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.pBufferInfo = &infos[i],
		};
	}
	if (dp->barrier) {
		chn_cmd_barrier(d, cb, 0);
	}
	d->bindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, dp->pipeline);
	if (dp->nbind > 0) {
		if (pool) {
			d->updateSets(d->dev, dp->nbind, writes, 0, NULL);
			d->bindSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, dp->layout, 0, 1, &set, 0, NULL);
		} else {
			d->pushDescriptors(cb, VK_PIPELINE_BIND_POINT_COMPUTE, dp->layout, 0, dp->nbind, writes);
		}
	}
	if (dp->push_size > 0) {
		d->pushConstants(cb, dp->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, dp->push_size, dp->push);
	}
	d->dispatch(cb, dp->groups[0], dp->groups[1], dp->groups[2]);
	return VK_SUCCESS;
}

void chn_cmd_copy(chn_device *d, VkCommandBuffer cb, VkBuffer src, VkBuffer dst, uint32_t n, const VkBufferCopy *regions) {
	d->copyBuffer(cb, src, dst, n, regions);
}

void chn_cmd_timestamp(chn_device *d, VkCommandBuffer cb, VkQueryPool pool, uint32_t query) {
	d->writeTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, query);
}

void chn_cmd_reset_queries(chn_device *d, VkCommandBuffer cb, VkQueryPool pool, uint32_t first, uint32_t count) {
	d->resetQueries(cb, pool, first, count);
}

VkResult chn_begin(chn_device *d, VkCommandBuffer cb) {
	VkCommandBufferBeginInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	return d->begin(cb, &info);
}

VkResult chn_begin_reusable(chn_device *d, VkCommandBuffer cb) {
	VkCommandBufferBeginInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT,
	};
	return d->begin(cb, &info);
}

VkResult chn_end(chn_device *d, VkCommandBuffer cb) { return d->end(cb); }

VkResult chn_submit(chn_device *d, VkCommandBuffer cb, VkFence fence) {
	VkSubmitInfo info = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &cb,
	};
	return d->submit(d->queue, 1, &info, fence);
}

VkResult chn_wait(chn_device *d, VkFence fence, uint64_t timeout_ns) {
	return d->waitFences(d->dev, 1, &fence, VK_TRUE, timeout_ns);
}

VkResult chn_fence_status(chn_device *d, VkFence fence) { return d->fenceStatus(d->dev, fence); }

VkResult chn_reset_fence(chn_device *d, VkFence fence) { return d->resetFences(d->dev, 1, &fence); }

void chn_provoke_invalid(chn_device *d) {
	VkBufferCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = 0, // VUID-VkBufferCreateInfo-size-00912: size must be greater than 0
		.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkBuffer b = VK_NULL_HANDLE;
	if (d->createBuffer(d->dev, &info, NULL, &b) == VK_SUCCESS && b != VK_NULL_HANDLE) {
		d->destroyBuffer(d->dev, b, NULL);
	}
}
