#include <xgboost/c_api.h>

/* qtool opens libxgboost with dlopen the first time a model needs it instead of linking it, so
   that the commands that never train or predict (a live runner, `serve`, `--help`) start without
   it, OpenMP and dmlc. These are the types of the calls it makes; `__typeof__` names a
   declaration's type without referring to the symbol. */
#define QTOOL_XGBOOST_CALL(name) typedef __typeof__(&name) name##_call;
QTOOL_XGBOOST_CALL(XGBGetLastError)
QTOOL_XGBOOST_CALL(XGBRegisterLogCallback)
QTOOL_XGBOOST_CALL(XGBoostVersion)
QTOOL_XGBOOST_CALL(XGDMatrixCreateFromMat)
QTOOL_XGBOOST_CALL(XGDMatrixSetFloatInfo)
QTOOL_XGBOOST_CALL(XGDMatrixFree)
QTOOL_XGBOOST_CALL(XGBoosterCreate)
QTOOL_XGBOOST_CALL(XGBoosterFree)
QTOOL_XGBOOST_CALL(XGBoosterSetParam)
QTOOL_XGBOOST_CALL(XGBoosterLoadModelFromBuffer)
QTOOL_XGBOOST_CALL(XGBoosterUpdateOneIter)
QTOOL_XGBOOST_CALL(XGBoosterEvalOneIter)
QTOOL_XGBOOST_CALL(XGBoosterPredictFromDMatrix)
QTOOL_XGBOOST_CALL(XGBoosterSaveModelToBuffer)
QTOOL_XGBOOST_CALL(XGBoosterBoostedRounds)
QTOOL_XGBOOST_CALL(XGBoosterGetNumFeature)
#undef QTOOL_XGBOOST_CALL
