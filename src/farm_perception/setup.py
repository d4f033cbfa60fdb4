"""Package setup for farm_perception (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "farm_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "pyyaml", "opencv-python-headless"],
    zip_safe=False,
    maintainer="FARM maintainers",
    maintainer_email="maintainers@farm-robotics.org",
    description=open("package.xml").read().split("<description>")[1].split("</description>")[0],
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "perception_node = farm_perception.nodes.perception_node:main",
            "farm-perception = farm_perception.cli:main",
            "farm-hand-eye = farm_perception.hand_eye:main",
        ]
    },
)
