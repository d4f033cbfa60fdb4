"""Package setup for farm_policies (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "farm_policies"

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
        "console_scripts": ["policy_node = farm_policies.nodes.policy_node:main"],
        # failurebench_sim loads checkpoints through this plug-in (it imports no FARM package)
        "failurebench.policies": ["safetensors = farm_policies.checkpoint:load_policy"],
    },
)
