{
  # gpulet's native addon: N-API only (node-addon-api), C++17, C++ exceptions on.
  # It links -ldl and nothing from NVIDIA: libnvidia-ml.so.1 is dlopen()ed at run time, so this builds
  # on any Linux machine, with or without a GPU driver.
  "targets": [
    {
      "target_name": "gpulet_nvml",
      "sources": [
        "native/addon.cc", "native/probe.cc", "native/nvml_lib.cc", "native/nvml_read.cc", "native/nvml_sample.cc",
        "native/js_convert.cc", "native/events.cc", "native/session.cc",
        "native/nvml_mig.cc", "native/nvml_gpm.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      # The addon's version is the package's: read from package.json (gyp runs this in the directory of
      # binding.gyp), so `addonVersion` can never disagree with the agent's `service.version`.
      "defines": [
        "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED",
        "GPULET_ADDON_VERSION=\"<!(node -p \"require('./package.json').version\")\""
      ],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20", "-std=c++20"],
      "libraries": ["-ldl"]
    }
  ]
}
