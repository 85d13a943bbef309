"""Builds pixel3dmm._C with CMake (Ninja) and packages it beside libpixel3dmm.so.

Settings in pyproject.toml; this file only adds the CMake step. Environment:
  PIXEL3DMM_BUILD_DIR  reuse an existing CMake build tree (only the `_C` target is built there; the tree's options
                       are left as they are), instead of configuring a fresh one under build/temp*.
  PIXEL3DMM_JOBS       parallel compile jobs (default: all cores).
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        env = dict(os.environ)
        env.setdefault("CCACHE_SLOPPINESS", "pch_defines,time_macros,include_file_mtime,include_file_ctime")
        env.setdefault("CCACHE_BASEDIR", ROOT)
        jobs = env.get("PIXEL3DMM_JOBS", str(os.cpu_count() or 1))
        build_dir = env.get("PIXEL3DMM_BUILD_DIR")
        if build_dir:
            build_dir = os.path.abspath(build_dir)
        else:
            build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
            subprocess.check_call(
                ["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 "-DPIXEL3DMM_BUILD_TESTS=OFF", "-DPIXEL3DMM_BUILD_BENCHMARKS=OFF",
                 f"-DPython3_EXECUTABLE={sys.executable}"], env=env)
        subprocess.check_call(["cmake", "--build", build_dir, "-j", jobs, "--target", "_C"], env=env)

        dest = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(dest, exist_ok=True)
        module = glob.glob(os.path.join(build_dir, "python", "pixel3dmm", "_C*.so"))
        if len(module) != 1:
            raise RuntimeError(f"expected one built _C module in {build_dir}/python/pixel3dmm, found {module}")
        shutil.copy2(module[0], self.get_ext_fullpath(ext.name))
        # _C finds libpixel3dmm.so.N beside itself (RPATH $ORIGIN).
        for lib in glob.glob(os.path.join(build_dir, "lib", "libpixel3dmm.so.*")):
            if lib.count(".so.") == 1 and lib.rsplit(".so.", 1)[1].isdigit():
                shutil.copy2(lib, dest)


setup(ext_modules=[CMakeExtension("pixel3dmm._C")], cmdclass={"build_ext": CMakeBuild})
