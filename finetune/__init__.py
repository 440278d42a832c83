"""LoRA fine-tuning jobs, the data flywheel, and guardrail detector retraining.

`finetune.service.FineTuning` is the facade; `finetune.worker` the training process;
`finetune.settings.FinetuneSettings` the `finetune:` settings section. Nothing here imports
`gateway`: the gateway's routers (gateway/api/files.py, fine_tuning.py, feedback.py) import this.
"""
