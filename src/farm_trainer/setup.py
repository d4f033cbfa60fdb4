"""Package setup for farm_trainer (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "farm_trainer"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="FARM maintainers",
    maintainer_email="maintainers@farm-robotics.org",
    description=open("package.xml").read().split("<description>")[1].split("</description>")[0],
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "farm-train = farm_trainer.cli:main",
            "trainer_node = farm_trainer.nodes.trainer_node:main",
            "farm-demos = farm_trainer.demos:main",
        ]
    },
)
