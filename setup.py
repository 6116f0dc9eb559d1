from setuptools import find_packages, setup

setup(
    name="segdet",
    version="0.1.0",
    description="Semantic segmentation with optional instance masks: a Panoptic FPN trained by one trainer",
    packages=find_packages(include=["segdet", "segdet.*"]),
    package_data={"segdet.data": ["builtin_splits/*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "torch",
        "torchvision",
        "fvcore",
        "pycocotools",
        "opencv-python",
        "matplotlib",
        "numpy",
        "pillow",
        "PyYAML",
        "tabulate",
        "tensorboard",
    ],
    extras_require={
        "dev": ["pytest", "import-linter", "onnx", "onnxruntime", "onnxscript"],
        "export": ["onnx", "onnxruntime", "onnxscript"],
    },
)
