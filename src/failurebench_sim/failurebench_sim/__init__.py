"""FailureBench: MetaWorld manipulation tasks with intervention-requiring failures, scripted experts, datasets, and the MuJoCo twin node."""
